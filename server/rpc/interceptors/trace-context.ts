import { randomFillSync } from "node:crypto";
import type { Interceptor } from "@connectrpc/connect";
import { traceKey, type TraceContext } from "../context.js";

/** `version-traceid-parentid-flags` (W3C Trace Context, level 1); later versions may append fields. */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
/** An all-zero id, which W3C Trace Context declares invalid. */
const ZEROS = /^0+$/;

/**
 * The caller's W3C trace context, read from `traceparent`: the call joins the caller's trace as a span
 * of its own (a new span id, the caller's as parent). A missing or malformed header (all-zero ids,
 * version ff, a version-00 header with extra fields) starts a new trace, as the specification allows.
 */
export function parseTraceparent(header: string | null | undefined): TraceContext {
  const m = header ? TRACEPARENT.exec(header.trim()) : null;
  const valid = m && m[1] !== "ff" && !ZEROS.test(m[2]!) && !ZEROS.test(m[3]!) && !(m[1] === "00" && m[5] !== undefined);
  if (!m || !valid) return { traceId: randomHex(16), spanId: randomHex(8), sampled: false };
  return { traceId: m[2]!, spanId: randomHex(8), parentSpanId: m[3]!, sampled: (parseInt(m[4]!, 16) & 1) === 1 };
}

/** Random bytes for ids, drawn from the system's generator a pool at a time (two calls per RPC otherwise). */
const pool = Buffer.alloc(4096);
let used = pool.length;

/** `bytes` random bytes as hex; never all zeros (an invalid id in W3C Trace Context). */
function randomHex(bytes: number): string {
  for (;;) {
    if (used + bytes > pool.length) {
      randomFillSync(pool);
      used = 0;
    }
    const hex = pool.toString("hex", used, used + bytes);
    used += bytes;
    if (!ZEROS.test(hex)) return hex;
  }
}

/** Puts the call's trace context (traceKey) in its context, for the access log and the call's logger. */
export function createTraceContextInterceptor(): Interceptor {
  return (next) => (req) => {
    req.contextValues.set(traceKey, parseTraceparent(req.header.get("traceparent")));
    return next(req);
  };
}
