import { randomUUID } from "node:crypto";
import { createContextKey } from "@connectrpc/connect";
import type { Logger } from "../core/logger.js";
import type { Principal } from "../security/api-keys.js";

/** The id of the current call: the caller's `x-request-id` when it is well formed, a new UUID otherwise. */
export const requestIdKey = createContextKey<string>("", { description: "request id" });

/** The call's place in a distributed trace (W3C Trace Context): its trace, its own span, the caller's span. */
export interface TraceContext {
  readonly traceId: string;
  readonly spanId: string;
  /** The caller's span, from its `traceparent`; absent when the call started a trace. */
  readonly parentSpanId?: string;
  /** The caller's sampled flag. */
  readonly sampled: boolean;
}

/** The call's trace context, from the caller's `traceparent` or a new trace. */
export const traceKey = createContextKey<TraceContext | undefined>(undefined, { description: "trace context" });

/** The call's logger, bound to its request id, trace, service and method (made on first use: most calls never log). */
export const loggerKey = createContextKey<(() => Logger) | undefined>(undefined, { description: "request logger" });

/** Set on calls that arrived on a REST path: the route, e.g. `GET /api/v1/translation/sessions/{session_id}`. */
export const restRouteKey = createContextKey<string | undefined>(undefined, { description: "REST route" });

/**
 * Set on calls that arrived on a REST path: lets a handler choose the HTTP status of a successful
 * reply (GetHealth answers 503 when unhealthy). Absent on gRPC and Connect calls.
 */
export const httpStatusKey = createContextKey<((status: number) => void) | undefined>(undefined, { description: "REST reply status" });

/** The API key a call was authenticated with (absent when no keys are configured, or for open endpoints). */
export const principalKey = createContextKey<Principal | undefined>(undefined, { description: "caller" });

/** The caller's IP address, as the listener saw it. */
export const clientAddressKey = createContextKey<string | undefined>(undefined, { description: "client address" });

const WELL_FORMED = /^[A-Za-z0-9._:\-]{1,128}$/;

/** The caller's request id when it is well formed, a new UUID otherwise. */
export function requestIdOf(given: string | null | undefined): string {
  return given && WELL_FORMED.test(given) ? given : randomUUID();
}
