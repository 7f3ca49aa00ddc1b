import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "../core/logger.js";
import type { HttpRoute } from "../platform/module.js";
import { normalizeAddress } from "../rpc/client-address.js";
import { requestIdOf } from "../rpc/context.js";
import type { Authenticator } from "../security/auth.js";
import type { RateLimiter } from "../security/rate-limit.js";
import { headerOf, type NodeRequest, type NodeResponse } from "./node-types.js";
import { restError } from "./rest/rest-errors.js";
import { sendError } from "./rest/reply.js";

export interface ModuleRoutesDeps {
  readonly authenticator: Authenticator;
  readonly limiter: RateLimiter;
  readonly logger: Logger;
}

/**
 * Serves the modules' plain HTTP routes (see HttpRoute): matches method and path, checks the access of
 * the RPC a route stands for and the caller's rate limits, and answers errors the way the REST paths do.
 * Returns false for a request no route matches.
 */
export function createModuleRoutes(routes: readonly HttpRoute[], deps: ModuleRoutesDeps): (req: NodeRequest, res: NodeResponse) => boolean {
  const compiled = routes.map((route) => ({ route, segments: route.path.split("/").slice(1) }));
  return (req, res) => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const parts = path.split("/").slice(1);
    for (const { route, segments } of compiled) {
      if (segments.length !== parts.length) continue;
      const params = matchSegments(segments, parts);
      if (!params) continue;
      if (req.method !== route.method && !(route.method === "GET" && req.method === "HEAD")) continue;
      const fail = (err: unknown) => {
        const error = ConnectError.from(err, Code.Internal);
        if (error.code === Code.Internal || error.code === Code.Unknown) deps.logger.error({ err, path: route.path }, "HTTP route failed");
        if (res.headersSent) return void res.destroy();
        sendError(req, res, restError(error, requestIdOf(headerOf(req, "x-request-id"))));
      };
      void (async () => {
        let key: string | undefined;
        if (route.rpc !== undefined) {
          const checked = deps.authenticator.checkRpc(route.rpc, (name) => headerOf(req, name));
          if (checked instanceof ConnectError) throw checked;
          key = checked?.name;
        }
        await deps.limiter(key, normalizeAddress(req.socket?.remoteAddress));
        await route.handle(req, res, params);
      })().catch(fail);
      return true;
    }
    return false;
  };
}

/** The `{name}` parameters of a path that matches the route's segments, or undefined. */
function matchSegments(segments: readonly string[], parts: readonly string[]): Record<string, string> | undefined {
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    const part = parts[i]!;
    if (segment.startsWith("{") && segment.endsWith("}")) {
      let value: string;
      try {
        value = decodeURIComponent(part);
      } catch {
        return undefined;
      }
      if (value === "") return undefined;
      params[segment.slice(1, -1)] = value;
    } else if (segment !== part) {
      return undefined;
    }
  }
  return params;
}
