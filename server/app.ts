import { connectNodeAdapter } from "@connectrpc/connect-node";
import { collectDefaultMetrics, Registry } from "prom-client";
import { version } from "../package.json";
import { openSqlBackend } from "./backends/sql/sql-backend.js";
import type { Config } from "./config.js";
import { createHealthMonitor } from "./core/health-monitor.js";
import { createLogger, type Logger } from "./core/logger.js";
import { listen, type Listener } from "./http/listener.js";
import { createPlainRoutes } from "./http/plain-routes.js";
import { createAccessLogInterceptor } from "./rpc/interceptors/access-log.js";
import { createErrorMappingInterceptor } from "./rpc/interceptors/error-mapping.js";
import { createInFlightTracker } from "./rpc/interceptors/in-flight.js";
import { createRpcMetrics } from "./rpc/interceptors/metrics.js";
import { createRequestIdInterceptor } from "./rpc/interceptors/request-id.js";
import { createRoutes, SERVED_SERVICES } from "./rpc/routes.js";
import { createSystemService } from "./system/system.service.js";

/** A running service. */
export interface App {
  readonly config: Config;
  /** Base URL of the listener, e.g. http://127.0.0.1:8001. */
  readonly url: string;
  readonly logger: Logger;
  /**
   * Graceful stop: stop accepting, report NOT_SERVING, let in-flight calls finish within the shutdown
   * timeout (then cancel them), and close the backends. Safe to call more than once.
   */
  close(): Promise<void>;
}

export interface AppOptions {
  /** Defaults to a JSON logger on stdout at the configured level. */
  readonly logger?: Logger;
}

/** The composition root: opens the backends, wires every service and starts the listener. */
export async function startApp(config: Config, options: AppOptions = {}): Promise<App> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const startedAt = Date.now();

  const sql = await openSqlBackend(config.sqlUrl);
  const backends = [sql];
  const monitor = createHealthMonitor(backends);

  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const rpcMetrics = createRpcMetrics(registry);
  const inFlight = createInFlightTracker();
  const system = createSystemService({
    config,
    version,
    startedAt,
    monitor,
    backends,
    rpcMetrics,
    registry,
    services: SERVED_SERVICES,
  });

  const shutdown = new AbortController();
  const handler = connectNodeAdapter({
    routes: createRoutes({ system, monitor }),
    interceptors: [
      createRequestIdInterceptor(),
      createAccessLogInterceptor(logger),
      rpcMetrics.interceptor,
      inFlight.interceptor,
      createErrorMappingInterceptor(logger),
    ],
    readMaxBytes: config.limits.maxRequestBytes,
    writeMaxBytes: 4 * config.limits.maxRequestBytes,
    shutdownSignal: shutdown.signal,
    fallback: createPlainRoutes({ system, registry }),
  });

  let listener: Listener;
  try {
    listener = await listen(handler, config.listen);
  } catch (err) {
    monitor.stop();
    await sql.close();
    throw err;
  }
  const url = `http://${listener.address.host.includes(":") ? `[${listener.address.host}]` : listener.address.host}:${listener.address.port}`;
  logger.info({ url, sql: sql.kind, version }, "listening");

  let closing: Promise<void> | undefined;
  const close = async () => {
    monitor.markShuttingDown();
    listener.stopAccepting();
    const drained = await inFlight.drained(config.shutdownTimeoutMs);
    if (!drained) {
      logger.warn({ in_flight: inFlight.count() }, "shutdown timeout: cancelling calls still running");
      shutdown.abort();
    }
    // Replies just written get a moment to leave before the sockets go.
    const grace = setTimeout(() => listener.destroyConnections(), drained ? 1000 : 0);
    await listener.closed();
    clearTimeout(grace);
    monitor.stop();
    await sql.close();
    logger.info("stopped");
  };

  return {
    config,
    url,
    logger,
    close: () => (closing ??= close()),
  };
}
