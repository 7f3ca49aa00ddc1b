import { ConnectError, Code } from "@connectrpc/connect";
import type { JsonObject } from "@bufbuild/protobuf";
import type { Registry } from "prom-client";
import { requestIdOf } from "../rpc/context.js";
import { createDocsPage, createRedocPage, type Asset } from "./docs-page.js";
import { encodeGrpcMessage } from "./grpc-message.js";
import { headerOf, type NodeRequest, type NodeResponse } from "./node-types.js";
import { restError } from "./rest/rest-errors.js";
import { sendError } from "./rest/reply.js";
import type { Authenticator } from "../security/auth.js";
import { HEALTH_REQUIREMENT, METRICS_REQUIREMENT, type Requirement } from "../security/scopes.js";
import type { HealthMonitor } from "../core/health-monitor.js";

export interface PlainRoutesDeps {
  readonly registry: Registry;
  /** Guards `/metrics` (scope system:read unless configured open). */
  readonly authenticator: Authenticator;
  /** The OpenAPI document of the REST paths. */
  readonly openApi: () => JsonObject;
  /** Backend states for `/readyz`. */
  readonly monitor: HealthMonitor;
}

/**
 * The paths that are neither RPCs nor REST bindings of RPCs: `GET /metrics` (Prometheus text),
 * `/livez` and `/readyz` (load-balancer probes), `GET /openapi.json` and the API pages under `/docs`
 * (Swagger UI) and `/redoc` (ReDoc). Returns false for any other request.
 */
export function createPlainRoutes(deps: PlainRoutesDeps): (req: NodeRequest, res: NodeResponse) => boolean {
  const pages: [string, (name: string) => Promise<Asset | undefined>][] = [
    ["/docs", createDocsPage()],
    ["/redoc", createRedocPage()],
  ];
  let openApiText: string | undefined;
  return (req, res) => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    if (req.method !== "GET" && req.method !== "HEAD") return false;
    /** Answers the caller's refusal and returns true when it may not see `requirement`'s paths. */
    const refused = (requirement: Requirement) => {
      const denied = deps.authenticator.check(requirement, (name) => headerOf(req, name));
      if (!(denied instanceof ConnectError)) return false;
      sendError(req, res, restError(denied, requestIdOf(headerOf(req, "x-request-id"))));
      return true;
    };
    // Liveness: the process serves requests. A load balancer or orchestrator restarts it when this fails.
    if (path === "/livez") {
      if (!refused(HEALTH_REQUIREMENT)) send(req, res, 200, "application/json", JSON.stringify({ status: "live" }));
      return true;
    }
    // Readiness: the backends the instance cannot serve without answer (from the last background probe).
    if (path === "/readyz") {
      if (refused(HEALTH_REQUIREMENT)) return true;
      const { backends, ageMs } = deps.monitor.current();
      const ready = deps.monitor.serving();
      const status = deps.monitor.shuttingDown() ? "shutting_down" : ready ? "ready" : "not_ready";
      send(req, res, ready ? 200 : 503, "application/json", JSON.stringify({ status, backends, backends_age_ms: ageMs }));
      return true;
    }
    if (path === "/metrics") {
      if (refused(METRICS_REQUIREMENT)) return true;
      deps.registry.metrics().then(
        (text) => send(req, res, 200, deps.registry.contentType, text),
        () => res.destroy(),
      );
      return true;
    }
    if (path === "/openapi.json") {
      send(req, res, 200, "application/json", (openApiText ??= JSON.stringify(deps.openApi())));
      return true;
    }
    for (const [prefix, page] of pages) {
      if (path !== prefix && !path.startsWith(`${prefix}/`)) continue;
      page(path.slice(prefix.length + 1)).then(
        (asset) => (asset ? send(req, res, 200, asset.contentType, asset.body, "public, max-age=3600") : sendNotFound(req, res)),
        () => res.destroy(),
      );
      return true;
    }
    return false;
  };
}

/**
 * A path nothing serves. gRPC and gRPC-Web callers get UNIMPLEMENTED the way their protocol says
 * (HTTP 200, `grpc-status: 12`); a Connect call to an unknown `/<service>/<method>` gets 404 with code
 * `unimplemented`; anything else the JSON 404 of SPEC §2.
 */
export function sendNotFound(req: NodeRequest, res: NodeResponse): void {
  const path = (req.url ?? "/").split("?")[0] ?? "/";
  const requestId = requestIdOf(headerOf(req, "x-request-id"));
  const contentType = headerOf(req, "content-type") ?? "";
  const rpcPath = /^\/[\w.]+\/\w+$/.test(path);
  if (rpcPath && contentType.startsWith("application/grpc")) {
    req.resume();
    res.writeHead(200, {
      "content-type": contentType.startsWith("application/grpc-web") ? "application/grpc-web+proto" : "application/grpc+proto",
      "grpc-status": "12",
      "grpc-message": encodeGrpcMessage(`unknown method ${path}`),
      "x-request-id": requestId,
    });
    res.end();
    return;
  }
  const code = rpcPath && req.method === "POST" ? Code.Unimplemented : Code.NotFound;
  const message = code === Code.Unimplemented ? `unknown method ${path}` : `no route for ${req.method ?? "GET"} ${path}`;
  sendError(req, res, restError(new ConnectError(message, code), requestId, 404));
}

function send(
  req: NodeRequest,
  res: NodeResponse,
  status: number,
  contentType: string,
  body: string | Buffer,
  cacheControl = "no-store",
): void {
  res.writeHead(status, { "content-type": contentType, "content-length": Buffer.byteLength(body), "cache-control": cacheControl });
  if (req.method === "HEAD") res.end();
  else res.end(body);
}
