import { randomUUID } from "node:crypto";
import { setMaxListeners } from "node:events";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { ConnectError, createContextValues } from "@connectrpc/connect";
import { collectDefaultMetrics, Registry } from "prom-client";
import { license, version } from "../package.json";
import { openSqlBackend } from "./backends/sql/sql-backend.js";
import { isUnreachable } from "./backends/sql/unreachable.js";
import { redactedConfig, redactUrl, type Config } from "./config.js";
import { createHealthMonitor } from "./core/health-monitor.js";
import { createLogger, type Logger } from "./core/logger.js";
import { retryAtStartup } from "./core/startup-retry.js";
import type { BatcherStatus } from "./core/write-batcher.js";
import { withGrpcMessageEncoding } from "./http/grpc-message.js";
import { MODULES } from "./modules.js";
import { createClosers, type Closers } from "./platform/closers.js";
import { createDeadLetterRetry } from "./platform/dead-letter-retry.js";
import type { PlatformView } from "./platform/module.js";
import { createRoleSet } from "./platform/roles.js";
import { schemaOf, serviceNeeds, startModules, type StartedModules } from "./platform/start-modules.js";
import { listen, type Listener } from "./http/listener.js";
import { createModuleRoutes } from "./http/module-routes.js";
import { createPlainRoutes, sendNotFound } from "./http/plain-routes.js";
import { createRpcHandler } from "./http/rpc-handler.js";
import { decodeUtf8Body } from "./http/utf8-body.js";
import { buildOpenApi } from "./http/rest/openapi.js";
import { createTranscoder, type Transcoder } from "./http/rest/transcoder.js";
import { createAccessLogInterceptor } from "./rpc/interceptors/access-log.js";
import { createErrorMappingInterceptor } from "./rpc/interceptors/error-mapping.js";
import { createInFlightTracker } from "./rpc/interceptors/in-flight.js";
import { createRpcMetrics, LOOP_SAMPLE_MS } from "./rpc/interceptors/metrics.js";
import { createRequestIdInterceptor } from "./rpc/interceptors/request-id.js";
import { createTraceContextInterceptor } from "./rpc/interceptors/trace-context.js";
import { binaryMethods, createRoutes, servedAccess, servedServices } from "./rpc/routes.js";
import { createRedisKvStore } from "./backends/kv/redis.js";
import { openRedisBackend, type RedisBackend } from "./backends/redis/redis-backend.js";
import { normalizeAddress } from "./rpc/client-address.js";
import { clientAddressKey } from "./rpc/context.js";
import { createAuthenticator } from "./security/auth.js";
import { createKvBuckets, createMemoryBuckets, createRateLimiter, createRateLimitInterceptor } from "./security/rate-limit.js";

/**
 * JSON over Connect, gRPC and gRPC-Web: unknown fields are ignored (Connect's default), and bodies are
 * decoded as REST bodies are, so invalid UTF-8 is refused rather than stored as U+FFFD. (Connect's JSON
 * serialization takes a `textDecoder`, though the router options' type does not name it.)
 */
const CONNECT_JSON = { ignoreUnknownFields: true, textDecoder: { decode: decodeUtf8Body } };

/** A running service. */
export interface App {
  readonly config: Config;
  /** Base URL of the listener, e.g. http://127.0.0.1:8001. */
  readonly url: string;
  readonly logger: Logger;
  /** The first write path's state (translation's): buffer, flushes, log. */
  status(): BatcherStatus;
  /** Every RPC the router serves, by `/<service>/<method>` path. */
  readonly rpcs: readonly string[];
  /**
   * Graceful stop: stop accepting, report NOT_SERVING, let in-flight calls finish within the shutdown
   * timeout (then cancel them), and close the backends. Safe to call more than once.
   */
  close(): Promise<void>;
}

export interface AppOptions {
  /** Defaults to a JSON logger on stdout at the configured level. */
  readonly logger?: Logger;
  /** Abandons the start-up while it waits for an unreachable database (a stop signal arrived). */
  readonly signal?: AbortSignal;
}

/**
 * The composition root: opens the backends, wires every service and starts the listener. If any step
 * fails, whatever was opened before it is closed again before the error is thrown.
 */
export async function startApp(config: Config, options: AppOptions = {}): Promise<App> {
  const opened = createClosers();
  try {
    return await assemble(config, options, opened);
  } catch (err) {
    await opened.closeAll();
    throw err;
  }
}

async function assemble(config: Config, options: AppOptions, opened: Closers): Promise<App> {
  const logger = options.logger ?? createLogger(config.logLevel, undefined, config.logFormat);
  const startedAt = Date.now();
  const instanceId = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;

  // The backends: SQL first (it holds the schema of every module), then the roles the modules need.
  const sql = await retryAtStartup(
    () => openSqlBackend(config.sqlUrl, { pingTimeoutMs: config.health.timeoutMs, migrations: schemaOf(MODULES) }),
    {
      what: `PERSISTENCE_SQL_URL=${redactUrl(config.sqlUrl)}`,
      timeoutMs: config.startupTimeoutMs,
      retryable: isUnreachable,
      logger,
      signal: options.signal,
    },
  );
  opened.add(() => sql.close());
  // Known once the listener listens (port 0 included); what the local store's presigned URLs point at without PERSISTENCE_PUBLIC_URL.
  let listenerUrl: string | undefined;
  const roles = createRoleSet({ config, sql, instanceId, logger, closers: opened, listenerUrl: () => listenerUrl });
  for (const module of MODULES) await roles.forModule(module.name, module.needs);
  // Shared rate limits need Redis; without it they are per instance, and the instance still serves.
  const redis = config.redisUrl === undefined ? undefined : await openRedis(config.redisUrl, logger);
  if (redis) opened.add(() => redis.close());
  const backends = [...roles.opened(), ...(redis ? [redis] : [])];
  const needs = serviceNeeds(MODULES, roles);
  // Ready (for /readyz, /health and gRPC health's "") while the backends every served service needs
  // answer; one only some services need takes only those to NOT_SERVING, not the instance out of its balancer.
  const monitor = createHealthMonitor(backends, { ...config.health, required: commonNeeds(needs) });
  opened.add(() => monitor.stop());

  // The platform: metrics, and what every module sees of the service as a whole.
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: LOOP_SAMPLE_MS });
  const rpcMetrics = createRpcMetrics(registry);
  const stopping = new AbortController();
  let modules: StartedModules | undefined;
  let served: string[] = [];
  let nowServing: () => void = () => {};
  const serving = new Promise<void>((resolve) => (nowServing = resolve));
  const platform: PlatformView = {
    version,
    startedAt,
    instanceId,
    monitor,
    rpcMetrics,
    backends: () => backends,
    writePaths: () => modules?.writePaths ?? [],
    services: () => served,
    redactedConfig: () => redactedConfig(config),
    serving,
    retryDeadLetters: createDeadLetterRetry({ sql, dataDir: config.dataDir, writePaths: () => modules?.writePaths ?? [], instanceId, logger }),
  };
  modules = await startModules({
    modules: MODULES,
    config,
    roles,
    sql,
    logger,
    registry,
    defaultDurability: config.wal ? "logged" : "accepted",
    stopping: stopping.signal,
    platform,
    closers: opened,
  });
  const product = modules.services.map((s) => s.desc);
  served = servedServices(product);
  const inFlight = createInFlightTracker();

  const shutdown = new AbortController();
  // Every call in flight listens to it (Connect links each call's signal to it): no listener limit.
  setMaxListeners(0, shutdown.signal);
  const routes = createRoutes({ services: modules.services, needs, monitor });
  // The REST paths call the very handlers (and interceptors) the router builds for the RPC protocols.
  let transcoder: Transcoder | undefined;
  let rpcs: string[] = [];
  const access = servedAccess(product);
  const authenticator = createAuthenticator({ ...config, access });
  if (!authenticator.enabled) logger.warn({ listen: `${config.listen.host}:${config.listen.port}` }, "no API keys configured: every caller that can reach the listener has full access");
  const limiter = createRateLimiter(config.rateLimits, redis ? createKvBuckets(createRedisKvStore(redis.client), logger) : createMemoryBuckets());
  const moduleRoutes = createModuleRoutes(modules.http, { authenticator, limiter, logger });
  const plainRoutes = createPlainRoutes({
    registry,
    authenticator,
    monitor,
    openApi: () => buildOpenApi(transcoder?.routes ?? [], { title: "Persistence Service", version, license, access, openEndpoints: config.openEndpoints }),
  });
  const handler = createRpcHandler({
    logger,
    binaryMethods: binaryMethods(modules.services),
    routes: (router) => {
      routes(router);
      // Whatever gets registered, nothing is served that declares no access.
      rpcs = router.handlers.map((h) => h.requestPath);
      const undeclared = rpcs.filter((rpc) => !access.has(rpc));
      if (undeclared.length > 0) throw new Error(`no declared access for ${undeclared.join(", ")}`);
      transcoder = createTranscoder({
        handlers: router.handlers,
        maxRequestBytes: config.limits.maxRequestBytes,
        json: { ignoreUnknownFields: config.restIgnoreUnknownFields },
        logger,
        authorize: (path, header) => {
          const result = authenticator.checkRpc(path, header);
          return result instanceof ConnectError ? result : undefined;
        },
      });
    },
    interceptors: [
      createRequestIdInterceptor(),
      createTraceContextInterceptor(),
      createAccessLogInterceptor(logger),
      ...modules.interceptors,
      rpcMetrics.interceptor,
      inFlight.interceptor,
      authenticator.interceptor,
      createRateLimitInterceptor(limiter, (rpcPath) => access.get(rpcPath)?.openWith === "health"),
      createErrorMappingInterceptor(logger),
    ],
    contextValues: (req) => createContextValues().set(clientAddressKey, normalizeAddress(req.socket.remoteAddress)),
    jsonOptions: CONNECT_JSON,
    readMaxBytes: config.limits.maxRequestBytes,
    writeMaxBytes: 4 * config.limits.maxRequestBytes,
    shutdownSignal: shutdown.signal,
    fallback: (req, res) => {
      if (!moduleRoutes(req, res) && !plainRoutes(req, res) && !transcoder?.handle(req, res)) sendNotFound(req, res);
    },
  });

  // The first /health answer comes from a probe, not from the assumption that what just opened is up.
  await monitor.check();
  const tls = config.tls ? { cert: readFileSync(config.tls.certFile), key: readFileSync(config.tls.keyFile) } : undefined;
  const listener: Listener = await listen(withGrpcMessageEncoding(handler), {
    ...config.listen,
    ...(tls ? { tls } : {}),
    connections: config.connections,
    logger,
    registry,
  });
  const url = `${config.tls ? "https" : "http"}://${listener.address.host.includes(":") ? `[${listener.address.host}]` : listener.address.host}:${listener.address.port}`;
  listenerUrl = url;
  logger.info({ url, sql: sql.kind, version }, "listening");
  nowServing();

  const started = modules;
  let closing: Promise<void> | undefined;
  const close = async () => {
    // Readiness goes down first; a balancer that polls it has the drain delay to stop sending calls here.
    monitor.markShuttingDown();
    if (config.drainDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, config.drainDelayMs));
    const deadline = Date.now() + config.shutdownTimeoutMs;
    stopping.abort();
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
    // The modules stop in reverse order; what cannot be flushed in time stays in the write-ahead logs for the next start.
    await started.stop(deadline);
    monitor.stop();
    // The backends close newest first, the SQL store last.
    await opened.closeAll();
    logger.info("stopped");
  };

  return {
    config,
    url,
    logger,
    status: () => {
      const first = started.writePaths[0];
      if (!first) throw new Error("no write path is open");
      return first.batcher.status();
    },
    rpcs,
    close: () => (closing ??= close()),
  };
}

/** The backends every service that needs any needs (services that need none, like SystemService, do not narrow it). */
function commonNeeds(needs: ReadonlyMap<string, readonly string[]>): string[] {
  const lists = [...needs.values()].filter((list) => list.length > 0);
  return lists.length === 0 ? [] : lists.reduce<string[]>((common, list) => common.filter((name) => list.includes(name)), [...lists[0]!]);
}

/** Redis, or (when it cannot be reached at start-up) the same client reconnecting in the background. */
async function openRedis(url: string, logger: Logger): Promise<RedisBackend> {
  try {
    return await openRedisBackend(url);
  } catch (err) {
    logger.warn({ err: (err as Error).message }, "Redis unreachable at start-up: rate limits are per instance until it answers");
    return openRedisBackend(url, { connect: false });
  }
}
