import { EventEmitter } from "node:events";
import type { Backend } from "../backends/backend.js";

export type BackendState = "up" | "down";

/**
 * Knows whether each backend answers. Pings them on an interval and on demand, remembers the last
 * answer, and tells listeners when the overall picture changes (gRPC Health Watch streams follow it).
 */
export interface HealthMonitor {
  /** Pings every backend now and returns their states. */
  check(): Promise<Record<string, BackendState>>;
  /** The states seen by the last check. */
  current(): Record<string, BackendState>;
  /** True when every backend is up and the service is not shutting down. */
  serving(): boolean;
  /** Marks the service as going away: serving() turns false for good. */
  markShuttingDown(): void;
  /** True once markShuttingDown() was called. */
  shuttingDown(): boolean;
  /** Calls `listener` whenever serving() changes; returns the unsubscribe function. */
  onChange(listener: (serving: boolean) => void): () => void;
  stop(): void;
}

export interface HealthMonitorOptions {
  /** Time between background pings in ms (default 5000). */
  readonly intervalMs?: number;
}

export function createHealthMonitor(backends: readonly Backend[], options: HealthMonitorOptions = {}): HealthMonitor {
  const events = new EventEmitter();
  const states: Record<string, BackendState> = Object.fromEntries(backends.map((b) => [b.name, "up" as const]));
  let shuttingDown = false;
  let lastServing = true;

  const serving = () => !shuttingDown && Object.values(states).every((s) => s === "up");
  const publish = () => {
    const now = serving();
    if (now !== lastServing) {
      lastServing = now;
      events.emit("change", now);
    }
  };
  const check = async () => {
    await Promise.all(
      backends.map(async (backend) => {
        states[backend.name] = await backend.ping().then(
          () => "up" as const,
          () => "down" as const,
        );
      }),
    );
    publish();
    return { ...states };
  };

  const timer = setInterval(() => void check(), options.intervalMs ?? 5000);
  timer.unref();

  return {
    check,
    current: () => ({ ...states }),
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
