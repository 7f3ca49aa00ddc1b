import type { ConnectRouter } from "@connectrpc/connect";
import { notFound } from "../core/errors.js";
import type { HealthMonitor } from "../core/health-monitor.js";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/grpc/health/v1/health_pb.js";

/**
 * grpc.health.v1.Health over the health monitor: "" is the whole server (serving while the backends it
 * cannot do without answer), and each served service is SERVING while the backends it needs answer,
 * so a backend only some services use takes only those out. Watch streams end once the server is
 * shutting down, after telling the watcher NOT_SERVING.
 */
export function registerHealth(router: ConnectRouter, monitor: HealthMonitor, services: ReadonlyMap<string, readonly string[]>): void {
  const known = new Set(["", ...services.keys()]);
  const statusOf = (service: string) =>
    !known.has(service) ? Status.SERVICE_UNKNOWN : monitor.serving(services.get(service)) ? Status.SERVING : Status.NOT_SERVING;

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
