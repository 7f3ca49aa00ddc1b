import { create, toJsonString } from "@bufbuild/protobuf";
import type { ConnectNodeAdapterOptions } from "@connectrpc/connect-node";
import type { Registry } from "prom-client";
import { GetHealthResponseSchema } from "../../gen/persistence/v1/system_pb.js";
import { bufferHealth } from "../system/system.handler.js";
import type { SystemService } from "../system/system.service.js";

type NodeHandler = NonNullable<ConnectNodeAdapterOptions["fallback"]>;
type Request = Parameters<NodeHandler>[0];
type Response = Parameters<NodeHandler>[1];

export interface PlainRoutesDeps {
  readonly system: SystemService;
  readonly registry: Registry;
}

/**
 * The paths that are not RPCs: `GET /health` (JSON, 503 when unhealthy, for load balancers and
 * probes) and `GET /metrics` (Prometheus text). Everything else gets a JSON 404.
 */
export function createPlainRoutes(deps: PlainRoutesDeps): NodeHandler {
  return (req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const readOnly = req.method === "GET" || req.method === "HEAD";
    if (readOnly && path === "/health") return void sendHealth(deps.system, req, res).catch(() => res.destroy());
    if (readOnly && path === "/metrics") return void sendMetrics(deps.registry, req, res).catch(() => res.destroy());
    send(req, res, 404, "application/json", JSON.stringify({ code: "not_found", message: `no route for ${req.method} ${path}` }));
  };
}

async function sendHealth(system: SystemService, req: Request, res: Response): Promise<void> {
  const health = await system.health();
  const body = toJsonString(
    GetHealthResponseSchema,
    create(GetHealthResponseSchema, {
      status: health.healthy ? "healthy" : "unhealthy",
      version: health.version,
      uptimeSeconds: health.uptimeSeconds,
      backends: health.backends,
      buffer: bufferHealth(health.buffer),
    }),
    { useProtoFieldName: true },
  );
  send(req, res, health.healthy ? 200 : 503, "application/json", body);
}

async function sendMetrics(registry: Registry, req: Request, res: Response): Promise<void> {
  send(req, res, 200, registry.contentType, await registry.metrics());
}

function send(req: Request, res: Response, status: number, contentType: string, body: string): void {
  res.writeHead(status, { "content-type": contentType, "content-length": Buffer.byteLength(body), "cache-control": "no-store" });
  if (req.method === "HEAD") res.end();
  else res.end(body);
}
