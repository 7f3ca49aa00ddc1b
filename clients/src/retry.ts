import type { DescMethod } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { Code, type Interceptor } from "@connectrpc/connect";
import { PersistenceError } from "./errors.js";

export interface RetryOptions {
  /** Attempts in all, the first included (default 5). */
  readonly maxAttempts?: number | undefined;
  /** Delay before the first retry when the service gives none, in ms (default 100); doubled each time. */
  readonly initialDelayMs?: number | undefined;
  /** Cap on the delay between attempts, in ms (default 5000). */
  readonly maxDelayMs?: number | undefined;
}

/**
 * Writes the service documents as safe to repeat although their descriptors do not say so: re-sending
 * a batch, or asking for a flush again, changes nothing (SPEC §3.2).
 */
const SAFE_TO_REPEAT = new Set(["persistence.v1.TranslationService.BatchUpsertSessions", "persistence.v1.TranslationService.BatchUpsertTasks", "persistence.v1.TranslationService.Flush"]);

/** Whether a call of `method` may be sent again after it may have reached the service. */
export function isIdempotent(method: DescMethod): boolean {
  return method.idempotency !== MethodOptions_IdempotencyLevel.IDEMPOTENCY_UNKNOWN || SAFE_TO_REPEAT.has(`${method.parent.typeName}.${method.name}`);
}

/**
 * Whether a failed call is worth another attempt: RESOURCE_EXHAUSTED with a retry delay means the
 * service refused it before doing anything (any RPC); UNAVAILABLE means it may or may not have been
 * done (idempotent RPCs only).
 */
export function shouldRetry(method: DescMethod, error: PersistenceError): boolean {
  if (error.code === Code.ResourceExhausted) return error.retryDelayMs !== undefined;
  return error.code === Code.Unavailable && isIdempotent(method);
}

/**
 * The wait before attempt `attempt + 1` (attempt counts from 1): the service's retry delay when it
 * gave one (plus up to 20% so callers spread out), else exponential backoff with jitter.
 */
export function backoffMs(attempt: number, serverDelayMs: number | undefined, options: RetryOptions = {}): number {
  const max = options.maxDelayMs ?? 5000;
  if (serverDelayMs !== undefined) return Math.min(max, serverDelayMs * (1 + Math.random() * 0.2));
  const base = Math.min(max, (options.initialDelayMs ?? 100) * 2 ** (attempt - 1));
  return base / 2 + Math.random() * (base / 2);
}

/** Resolves after `ms`, or rejects with the signal's reason once it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Retries unary calls as `shouldRetry` allows, within the call's deadline. Streams are never retried. */
export function createRetryInterceptor(options: RetryOptions = {}): Interceptor {
  const maxAttempts = Math.max(1, options.maxAttempts ?? 5);
  return (next) => async (req) => {
    if (req.stream) return next(req);
    for (let attempt = 1; ; attempt++) {
      try {
        return await next(req);
      } catch (reason) {
        const error = PersistenceError.from(reason);
        if (attempt >= maxAttempts || req.signal.aborted || !shouldRetry(req.method, error)) throw error;
        try {
          await sleep(backoffMs(attempt, error.retryDelayMs, options), req.signal);
        } catch {
          throw error; // the deadline ran out while waiting: report what the service said
        }
      }
    }
  };
}
