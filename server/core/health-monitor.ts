import { EventEmitter } from "node:events";
import type { Backend } from "../backends/backend.js";

export type BackendState = "up" | "down";

/** The backends' states as the last probe round saw them. */
export interface HealthSnapshot {
  readonly backends: Record<string, BackendState>;
  /** Milliseconds since that round finished. */
  readonly ageMs: number;
}

/**
 * Knows whether each backend answers. Probes them in the background on an interval, each probe bounded
 * by a timeout, remembers the last answers, and tells listeners when the overall picture changes (gRPC
 * Health Watch streams follow it). Readers never wait for a probe: a database that hangs cannot slow
 * down `/health`.
 */
export interface HealthMonitor {
  /** Probes every backend now (or joins the round in flight) and resolves with their states. */
  check(): Promise<Record<string, BackendState>>;
  /** What the last finished round saw, and how long ago. */
  current(): HealthSnapshot;
  /**
   * True when the service is not shutting down and every backend in `needed` is up (default: the
   * monitor's `required` backends, the ones without which the instance should take no traffic).
   */
  serving(needed?: readonly string[]): boolean;
  /** Marks the service as going away: serving() turns false for good. */
  markShuttingDown(): void;
  /** True once markShuttingDown() was called. */
  shuttingDown(): boolean;
  /** Calls `listener` whenever serving() changes; returns the unsubscribe function. */
  onChange(listener: (serving: boolean) => void): () => void;
  stop(): void;
}

export interface HealthMonitorOptions {
  /** Time between background probe rounds in ms (default 2000). */
  readonly intervalMs?: number;
  /** How long a backend may take to answer a probe before it counts as down, in ms (default 2000). */
  readonly timeoutMs?: number;
  /**
   * Backends the instance cannot serve without (default: all). One that only some features use
   * (Redis behind rate limits, say) may be down while the instance stays in its load balancer.
   */
  readonly required?: readonly string[];
}

export function createHealthMonitor(backends: readonly Backend[], options: HealthMonitorOptions = {}): HealthMonitor {
  const timeoutMs = options.timeoutMs ?? 2000;
  const events = new EventEmitter();
  const states: Record<string, BackendState> = Object.fromEntries(backends.map((b) => [b.name, "up" as const]));
  let checkedAt = Date.now();
  let shuttingDown = false;
  let lastServing = true;
  let round: Promise<Record<string, BackendState>> | undefined;
  /** A ping still unanswered after its probe timed out is waited for again, not sent again: hung pings never pile up. */
  const pings = new Map<Backend, Promise<BackendState>>();

  const required = options.required ?? backends.map((b) => b.name);
  const serving = (needed: readonly string[] = required) => !shuttingDown && needed.every((name) => states[name] !== "down");
  const publish = () => {
    const now = serving();
    if (now !== lastServing) {
      lastServing = now;
      events.emit("change", now);
    }
  };
  const ping = (backend: Backend): Promise<BackendState> => {
    let pending = pings.get(backend);
    if (!pending) {
      pending = backend.ping().then(
        () => "up" as const,
        () => "down" as const,
      );
      pings.set(backend, pending);
      void pending.then(() => pings.delete(backend));
    }
    return pending;
  };
  const probe = (backend: Backend): Promise<BackendState> => {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<BackendState>((resolve) => {
      timer = setTimeout(() => resolve("down"), timeoutMs);
      timer.unref();
    });
    return Promise.race([ping(backend), timedOut]).finally(() => clearTimeout(timer));
  };
  const check = () =>
    (round ??= Promise.all(backends.map(async (backend) => [backend.name, await probe(backend)] as const)).then((results) => {
      for (const [name, state] of results) states[name] = state;
      checkedAt = Date.now();
      round = undefined;
      publish();
      return { ...states };
    }));

  const timer = setInterval(() => void check(), options.intervalMs ?? 2000);
  timer.unref();

  return {
    check,
    current: () => ({ backends: { ...states }, ageMs: Date.now() - checkedAt }),
    serving,
    markShuttingDown() {
      shuttingDown = true;
      publish();
    },
    shuttingDown: () => shuttingDown,
    onChange(listener) {
      events.on("change", listener);
      return () => events.off("change", listener);
    },
    stop: () => clearInterval(timer),
  };
}
