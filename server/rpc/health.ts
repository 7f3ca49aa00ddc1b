import type { ConnectRouter } from "@connectrpc/connect";
import { notFound } from "../core/errors.js";
import type { HealthMonitor } from "../core/health-monitor.js";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/grpc/health/v1/health_pb.js";

/**
 * grpc.health.v1.Health over the health monitor: "" is the whole server, and each served service
 * shares its status (they all stand on the same backends). Watch streams end once the server is
 * shutting down, after telling the watcher NOT_SERVING.
 */
export function registerHealth(router: ConnectRouter, monitor: HealthMonitor, services: readonly string[]): void {
  const known = new Set(["", ...services]);
  const statusOf = (service: string) =>
    !known.has(service) ? Status.SERVICE_UNKNOWN : monitor.serving() ? Status.SERVING : Status.NOT_SERVING;

  router.service(Health, {
    check(req) {
      if (!known.has(req.service)) throw notFound("service", req.service);
      return { status: statusOf(req.service) };
    },
    list() {
      return { statuses: Object.fromEntries([...known].map((name) => [name, { status: statusOf(name) }])) };
    },
    async *watch(req, ctx) {
      let last = statusOf(req.service);
      yield { status: last };
      while (!ctx.signal.aborted && !monitor.shuttingDown()) {
        await nextChange(monitor, ctx.signal);
        const now = statusOf(req.service);
        if (now !== last) {
          last = now;
          yield { status: now };
        }
      }
    },
  });
}

function nextChange(monitor: HealthMonitor, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      unsubscribe();
      signal.removeEventListener("abort", done);
      resolve();
    };
    const unsubscribe = monitor.onChange(done);
    signal.addEventListener("abort", done);
  });
}
