import type { Interceptor } from "@connectrpc/connect";
import { observeCall } from "./observe-call.js";

/** Counts calls in progress so a shutdown can wait for them to finish. */
export interface InFlightTracker {
  readonly interceptor: Interceptor;
  /** Calls in progress now. */
  count(): number;
  /** Resolves true once no call is in progress, or false after `timeoutMs`. */
  drained(timeoutMs: number): Promise<boolean>;
}

export function createInFlightTracker(): InFlightTracker {
  let active = 0;
  const waiters = new Set<() => void>();
  const settle = () => {
    active--;
    if (active === 0) for (const wake of waiters) wake();
  };
  return {
    interceptor: (next) => (req) => {
      active++;
      return observeCall(next, req, { end: settle });
    },
    count: () => active,
    drained(timeoutMs) {
      if (active === 0) return Promise.resolve(true);
      return new Promise((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          waiters.delete(wake);
          resolve(true);
        };
        const timer = setTimeout(() => {
          waiters.delete(wake);
          resolve(false);
        }, timeoutMs);
        waiters.add(wake);
      });
    },
  };
}
