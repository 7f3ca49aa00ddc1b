import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "./logger.js";

export interface StartupRetryOptions {
  /** What is being opened, as the operator configured it, e.g. `PERSISTENCE_SQL_URL=mysql://app:[redacted]@db:3306/p`. */
  readonly what: string;
  /** How long to keep trying, in ms; 0 tries once. */
  readonly timeoutMs: number;
  /** Whether a failure may pass by itself (the backend is unreachable, not misconfigured). */
  readonly retryable: (err: unknown) => boolean;
  readonly logger: Logger;
  /** Stops the waiting between attempts (a signal arrived while starting). */
  readonly signal?: AbortSignal;
}

/** First and longest pause between attempts, in ms. */
const FIRST_DELAY_MS = 250;
const MAX_DELAY_MS = 5000;

/**
 * Runs `open` until it succeeds, retrying with exponential backoff (and jitter, so instances that start
 * together do not retry together) while its failures are retryable and `timeoutMs` has not passed. A
 * backend that starts alongside the service (same compose file, same reboot) is waited for; the error
 * that ends the start-up names what was being opened.
 */
export async function retryAtStartup<T>(open: () => Promise<T>, options: StartupRetryOptions): Promise<T> {
  const started = Date.now();
  const deadline = started + options.timeoutMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await open();
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (!options.retryable(err)) throw new Error(`${options.what}: ${message}`, { cause: err });
      const left = deadline - Date.now();
      if (left <= 0) {
        const seconds = Math.round((Date.now() - started) / 100) / 10;
        throw new Error(`${options.what}: still unreachable after ${attempt} attempts in ${seconds} s (PERSISTENCE_STARTUP_TIMEOUT_MS): ${message}`, { cause: err });
      }
      const backoff = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** (attempt - 1)) * (0.8 + Math.random() * 0.4);
      const delayMs = Math.round(Math.min(left, backoff));
      options.logger.warn({ target: options.what, attempt, retry_in_ms: delayMs, err: message }, "unreachable at start-up; retrying");
      await sleep(delayMs, undefined, { signal: options.signal });
    }
  }
}
