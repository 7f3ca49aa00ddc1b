import type { Registry } from "prom-client";
import type { Backend } from "../backends/backend.js";
import type { BackendState, HealthMonitor } from "../core/health-monitor.js";
import type { BatcherStatus } from "../core/write-batcher.js";
import type { DeadLetterRetry } from "../platform/dead-letter-retry.js";
import { LOOP_SAMPLE_MS, type RpcMetrics, type RpcSummary } from "../rpc/interceptors/metrics.js";

export interface BufferFigures {
  records: number;
  bytes: number;
  oldestAgeMs: number;
  /** Fill level against the configured limits, 0..1. */
  utilization: number;
  /** Buffered session and task records (the original design's split of `records`). */
  sessions: number;
  tasks: number;
  /** The record limit. */
  capacity: number;
  /** The last successful flush (ms since the epoch), if any. */
  lastFlushAt: number | undefined;
}

export interface Health {
  healthy: boolean;
  version: string;
  uptimeSeconds: number;
  /** As the health monitor's last probe saw them. */
  backends: Record<string, BackendState>;
  /** How old `backends` is, in ms. */
  backendsAgeMs: number;
  buffer: BufferFigures;
}

export interface MetricsSummary {
  uptimeSeconds: number;
  rpcs: RpcSummary[];
  backends: Record<string, BackendState>;
  process: { rssBytes: number; heapUsedBytes: number; cpuSeconds: number; eventLoopLagP99Ms: number };
  buffer: BufferFigures;
  writePath: BatcherStatus;
  writePaths: BatcherStatus[];
  caches: CacheFigures[];
}

/** Hits and misses of one cache, from the persistence_cache_* counters any module registers. */
export interface CacheFigures {
  name: string;
  hits: number;
  misses: number;
  hitRate: number;
}

export interface Info {
  name: string;
  version: string;
  /** The original design's fields: its name for the service, "running", and the page and health paths. */
  service: string;
  status: string;
  docs: string;
  redoc: string;
  health: string;
  services: string[];
  backends: Record<string, string>;
  links: Record<string, string>;
}

export interface SystemServiceDeps {
  /** The configuration as GetConfig shows it (secrets replaced). */
  readonly config: () => Record<string, unknown>;
  /** The per-write-path buffer limits, for the fill level. */
  readonly bufferLimits: { readonly maxRecords: number; readonly maxBytes: number };
  readonly version: string;
  readonly startedAt: number;
  readonly monitor: HealthMonitor;
  /** Every backend opened. */
  readonly backends: () => readonly Backend[];
  readonly rpcMetrics: RpcMetrics;
  readonly registry: Registry;
  /** Fully qualified names of every service the listener serves. */
  readonly services: () => readonly string[];
  /** Every write path's state, the first opened first (`write_path` reports that one, as before there were several). */
  readonly writePaths: () => BatcherStatus[];
  /** Buffered records per table of the first write path. */
  readonly bufferedByTable: () => Record<string, number>;
  /** Re-submits dead letters through the write paths that refused them. */
  readonly retryDeadLetters: DeadLetterRetry;
}

/** The service's view of itself: health, figures, configuration and identity. */
export interface SystemService {
  /** From the health monitor's last probe, without waiting for one. Unhealthy when a backend is down or the service is shutting down. */
  health(): Health;
  metrics(): Promise<MetricsSummary>;
  config(): Record<string, unknown>;
  info(): Info;
  /** RetryDeadLetters: INVALID_ARGUMENT names a bad filter field; FAILED_PRECONDITION while another retry runs. */
  retryDeadLetters: DeadLetterRetry;
}

export function createSystemService(deps: SystemServiceDeps): SystemService {
  const uptimeSeconds = () => Math.floor((Date.now() - deps.startedAt) / 1000);
  /**
   * The original design's buffer block: the first write path's (translation's) figures, as before there
   * were several; `write_paths` in GetMetrics reports every one.
   */
  const buffer = (): BufferFigures => {
    const s = deps.writePaths()[0] ?? idleWritePath();
    const { maxRecords, maxBytes } = deps.bufferLimits;
    const byTable = deps.bufferedByTable();
    return {
      records: s.bufferRecords,
      bytes: s.bufferBytes,
      oldestAgeMs: s.oldestAgeMs,
      utilization: Math.min(1, Math.max(s.bufferRecords / maxRecords, s.bufferBytes / maxBytes)),
      sessions: byTable.translation_sessions ?? 0,
      tasks: byTable.translation_tasks ?? 0,
      capacity: maxRecords,
      lastFlushAt: s.lastFlushAt,
    };
  };
  return {
    health() {
      const { backends, ageMs } = deps.monitor.current();
      return { healthy: deps.monitor.serving(), version: deps.version, uptimeSeconds: uptimeSeconds(), backends, backendsAgeMs: ageMs, buffer: buffer() };
    },
    async metrics() {
      const memory = process.memoryUsage();
      const cpu = process.cpuUsage();
      const lag = await deps.registry.getSingleMetric("nodejs_eventloop_lag_p99_seconds")?.get();
      return {
        uptimeSeconds: uptimeSeconds(),
        rpcs: await deps.rpcMetrics.summary(),
        backends: deps.monitor.current().backends,
        process: {
          rssBytes: memory.rss,
          heapUsedBytes: memory.heapUsed,
          cpuSeconds: (cpu.user + cpu.system) / 1e6,
          // prom-client records each interval of its sampling timer: the delay is what exceeds it.
          eventLoopLagP99Ms: Math.max(0, (lag?.values[0]?.value ?? 0) * 1000 - LOOP_SAMPLE_MS),
        },
        buffer: buffer(),
        writePath: deps.writePaths()[0] ?? idleWritePath(),
        writePaths: deps.writePaths(),
        caches: await cacheFigures(deps.registry),
      };
    },
    config: () => deps.config(),
    retryDeadLetters: (request, signal) => deps.retryDeadLetters(request, signal),
    info: () => ({
      name: "persistence",
      version: deps.version,
      services: [...deps.services()],
      backends: Object.fromEntries(deps.backends().map((b) => [b.name, b.kind])),
      service: "Persistence Service",
      status: "running",
      docs: "/docs",
      redoc: "/redoc",
      health: "/health",
      links: {
        health: "/health",
        metrics: "/metrics",
        system_metrics: "/api/v1/system/metrics",
        config: "/api/v1/system/config",
        openapi: "/openapi.json",
        docs: "/docs",
        redoc: "/redoc",
        reflection: "grpc.reflection.v1.ServerReflection",
      },
    }),
  };
}

/** What `write_path` reports on an instance with no write path. */
function idleWritePath(): BatcherStatus {
  return {
    name: "",
    bufferRecords: 0,
    bufferBytes: 0,
    oldestAgeMs: 0,
    lastFlushAt: undefined,
    flushes: 0,
    recordsWritten: 0,
    statements: 0,
    retries: 0,
    deadLetters: 0,
    retryBacklog: 0,
    databaseReachable: true,
    walReplayed: 0,
    walPendingRecords: 0,
  };
}

/** Sums the cache counters by their `cache` label. */
async function cacheFigures(registry: Registry): Promise<CacheFigures[]> {
  const byCache = new Map<string, { hits: number; misses: number }>();
  for (const [metric, field] of [["persistence_cache_hits_total", "hits"], ["persistence_cache_misses_total", "misses"]] as const) {
    for (const value of (await registry.getSingleMetric(metric)?.get())?.values ?? []) {
      const name = String(value.labels.cache ?? "");
      const figures = byCache.get(name) ?? { hits: 0, misses: 0 };
      figures[field] += value.value;
      byCache.set(name, figures);
    }
  }
  return [...byCache].map(([name, f]) => ({ name, ...f, hitRate: f.hits + f.misses === 0 ? 0 : (f.hits / (f.hits + f.misses)) * 100 }));
}
