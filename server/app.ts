import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { ConnectError, createContextValues } from "@connectrpc/connect";
import { collectDefaultMetrics, Registry } from "prom-client";
import { license, version } from "../package.json";
import { openSqlBackend } from "./backends/sql/sql-backend.js";
import { isUnreachable } from "./backends/sql/unreachable.js";
import { redactUrl, type Config } from "./config.js";
import { createHealthMonitor } from "./core/health-monitor.js";
import { createLogger, type Logger } from "./core/logger.js";
import { retryAtStartup } from "./core/startup-retry.js";
import { createStreamSlots } from "./core/stream-slots.js";
import type { BatcherStatus } from "./core/write-batcher.js";
import { withGrpcMessageEncoding } from "./http/grpc-message.js";
import { createClosers, type Closers } from "./platform/closers.js";
import { openWritePath } from "./platform/write-path.js";
import { listen, type Listener } from "./http/listener.js";
import { createPlainRoutes, sendNotFound } from "./http/plain-routes.js";
import { createRpcHandler } from "./http/rpc-handler.js";
import { decodeUtf8Body } from "./http/utf8-body.js";
import { buildOpenApi } from "./http/rest/openapi.js";
import { createTranscoder, type Transcoder } from "./http/rest/transcoder.js";
import { createAccessLogInterceptor } from "./rpc/interceptors/access-log.js";
import { createErrorMappingInterceptor } from "./rpc/interceptors/error-mapping.js";
import { createInFlightTracker } from "./rpc/interceptors/in-flight.js";
import { createRpcMetrics } from "./rpc/interceptors/metrics.js";
import { createRequestIdInterceptor } from "./rpc/interceptors/request-id.js";
import { createRoutes, SERVED_SERVICES, servedAccess } from "./rpc/routes.js";
import type { Backend } from "./backends/backend.js";
import { createRedisKvStore } from "./backends/kv/redis.js";
import { openRedisBackend, type RedisBackend } from "./backends/redis/redis-backend.js";
import { normalizeAddress } from "./rpc/client-address.js";
import { clientAddressKey } from "./rpc/context.js";
import { createAuthenticator } from "./security/auth.js";
import { createKvBuckets, createMemoryBuckets, createRateLimitInterceptor } from "./security/rate-limit.js";
import { registerSystemMetrics } from "./system/system.metrics.js";
import { createSystemService } from "./system/system.service.js";
import { createTranslationReads } from "./translation/translation.reads.js";
import { createTombstoneGuard } from "./translation/translation.tombstones.js";
import { createSessionEvents } from "./translation/translation.events.js";
import { scheduleCleanup } from "./translation/translation.cleanup.js";
import { createTranslationService } from "./translation/translation.service.js";
import { TRANSLATION_PATCH_TABLES, type TranslationTables } from "./translation/translation.table.js";

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
  /** The write path's state: buffer, flushes, log. */
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
  const logger = options.logger ?? createLogger(config.logLevel);
  const startedAt = Date.now();

  const sql = await retryAtStartup(() => openSqlBackend(config.sqlUrl, { pingTimeoutMs: config.health.timeoutMs }), {
    what: `PERSISTENCE_SQL_URL=${redactUrl(config.sqlUrl)}`,
    timeoutMs: config.startupTimeoutMs,
    retryable: isUnreachable,
    logger,
    signal: options.signal,
  });
  opened.add(() => sql.close());
  const redis = config.redisUrl === undefined ? undefined : await openRedis(config.redisUrl, logger);
  if (redis) opened.add(() => redis.close());
  const backends: Backend[] = redis ? [sql, redis] : [sql];
  // Redis backs only the shared rate limits (which fall back to per-instance buckets): without it the instance still serves.
  const monitor = createHealthMonitor(backends, { ...config.health, required: ["sql"] });
  opened.add(() => monitor.stop());

  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const rpcMetrics = createRpcMetrics(registry);
  registerSystemMetrics(registry, monitor, version);

  // The write path: replay what an earlier run left in the log before taking new writes.
  const translationPath = await openWritePath({
    name: "translation",
    tables: TRANSLATION_PATCH_TABLES,
    mode: "lww",
    sql,
    dataDir: config.dataDir,
    logWrites: config.wal,
    limits: {
      flushMaxRecords: config.flush.maxRecords,
      flushIntervalMs: config.flush.intervalMs,
      maxRecords: config.limits.bufferMaxRecords,
      maxBytes: config.limits.bufferMaxBytes,
    },
    prepare: createTombstoneGuard(sql.dialect),
    groupOf: (patch) => patch.key[0] ?? "",
    logger,
    registry,
  });
  const { batcher } = translationPath;
  opened.add(() => batcher.close(0));
  const translationDb = sql.db.withTables<TranslationTables>();
  const cleanup =
    config.cleanupIntervalMs > 0
      ? scheduleCleanup(translationDb, config.cleanupIntervalMs, `${hostname()}:${process.pid}:${randomUUID()}`, logger)
      : undefined;
  if (cleanup) opened.add(() => cleanup.stop());
  const events = createSessionEvents();
  batcher.onCommit((patches) => events.committed(patches));
  const stopping = new AbortController();
  const translationReads = createTranslationReads({
    db: translationDb,
    events,
    stopping: stopping.signal,
    watchSlots: createStreamSlots({
      name: "WatchSession",
      keyName: "session",
      total: config.limits.maxWatchStreams,
      perKey: config.limits.maxWatchStreamsPerSession,
    }),
    dialect: sql.dialect,
    batcher,
    countDeadLetters: translationPath.countDeadLetters,
  });
  const translation = createTranslationService({
    db: translationDb,
    events,
    dialect: sql.dialect,
    batcher,
    maxBatchRecords: config.limits.maxBatchRecords,
    countDeadLetters: translationPath.countDeadLetters,
  });
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
    writePath: () => batcher.status(),
    bufferedByTable: () => batcher.pendingByTable(),
    writePaths: () => [batcher.status()],
  });

  const shutdown = new AbortController();
  const routes = createRoutes({ system, translation, translationReads, monitor, defaultDurability: config.wal ? "logged" : "accepted" });
  // The REST paths call the very handlers (and interceptors) the router builds for the RPC protocols.
  let transcoder: Transcoder | undefined;
  let rpcs: string[] = [];
  const access = servedAccess();
  const authenticator = createAuthenticator({ ...config, access });
  if (!authenticator.enabled) logger.warn({ listen: `${config.listen.host}:${config.listen.port}` }, "no API keys configured: every caller that can reach the listener has full access");
  const plainRoutes = createPlainRoutes({
    registry,
    authenticator,
    monitor,
    openApi: () => buildOpenApi(transcoder?.routes ?? [], { title: "Persistence Service", version, license, access, openEndpoints: config.openEndpoints }),
  });
  const handler = createRpcHandler({
    logger,
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
      createAccessLogInterceptor(logger),
      rpcMetrics.interceptor,
      inFlight.interceptor,
      authenticator.interceptor,
      createRateLimitInterceptor(
        config.rateLimits,
        redis ? createKvBuckets(createRedisKvStore(redis.client), logger) : createMemoryBuckets(),
        (rpcPath) => access.get(rpcPath)?.openWith === "health",
      ),
      createErrorMappingInterceptor(logger),
    ],
    contextValues: (req) => createContextValues().set(clientAddressKey, normalizeAddress(req.socket.remoteAddress)),
    jsonOptions: CONNECT_JSON,
    readMaxBytes: config.limits.maxRequestBytes,
    writeMaxBytes: 4 * config.limits.maxRequestBytes,
    shutdownSignal: shutdown.signal,
    fallback: (req, res) => {
      if (!plainRoutes(req, res) && !transcoder?.handle(req, res)) sendNotFound(req, res);
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
  logger.info({ url, sql: sql.kind, version }, "listening");

  let closing: Promise<void> | undefined;
  const close = async () => {
    const deadline = Date.now() + config.shutdownTimeoutMs;
    monitor.markShuttingDown();
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
    await cleanup?.stop();
    // What cannot be flushed in time stays in the write-ahead log for the next start.
    await batcher.close(Math.max(0, deadline - Date.now()));
    monitor.stop();
    await sql.close();
    await redis?.close();
    logger.info("stopped");
  };

  return {
    config,
    url,
    logger,
    status: () => batcher.status(),
    rpcs,
    close: () => (closing ??= close()),
  };
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
