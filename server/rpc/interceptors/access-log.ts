import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { codeName } from "../../core/errors.js";
import type { Logger } from "../../core/logger.js";
import { loggerKey, principalKey, requestIdKey, restRouteKey, traceKey } from "../context.js";
import { observeCall } from "./observe-call.js";

/** The wire protocol of a call, from its content type. */
export function protocolOf(contentType: string | null): "grpc" | "grpc_web" | "connect" {
  if (contentType?.startsWith("application/grpc-web")) return "grpc_web";
  if (contentType?.startsWith("application/grpc")) return "grpc";
  return "connect";
}

const SERVER_FAULTS = new Set([Code.Internal, Code.Unknown, Code.DataLoss, Code.Unavailable]);

/**
 * One JSON line per call: service, method, protocol, code, duration, request id and trace context. Never payloads.
 * Also hands the call a logger bound to those fields (loggerKey), made if the call logs.
 */
export function createAccessLogInterceptor(logger: Logger): Interceptor {
  return (next) => (req) => {
    const started = performance.now();
    const trace = req.contextValues.get(traceKey);
    const bindings = {
      request_id: req.contextValues.get(requestIdKey),
      ...(trace ? { trace_id: trace.traceId, span_id: trace.spanId, ...(trace.parentSpanId ? { parent_span_id: trace.parentSpanId } : {}) } : {}),
      service: req.service.typeName,
      method: req.method.name,
    };
    let callLogger: Logger | undefined;
    req.contextValues.set(loggerKey, () => (callLogger ??= logger.child(bindings)));
    const route = req.contextValues.get(restRouteKey);
    const protocol = route === undefined ? protocolOf(req.header.get("content-type")) : "rest";
    return observeCall(next, req, {
      end(err) {
        const code = err === undefined ? "ok" : codeName(ConnectError.from(err).code);
        const caller = req.contextValues.get(principalKey)?.name;
        const line = { protocol, ...(route === undefined ? {} : { route }), ...(caller === undefined ? {} : { api_key: caller }), code, duration_ms: Math.round((performance.now() - started) * 1000) / 1000 };
        // The line a child logger with `bindings` would write, without making one per call.
        if (err !== undefined && SERVER_FAULTS.has(ConnectError.from(err).code)) logger.warn({ ...bindings, ...line }, "call failed");
        else logger.info({ ...bindings, ...line }, "call");
      },
    });
  };
}
