import type { Registry } from "prom-client";
import { redactedConfig, type Config } from "../config.js";
import type { Backend } from "../backends/backend.js";
import type { BackendState, HealthMonitor } from "../core/health-monitor.js";
import type { BatcherStatus } from "../core/write-batcher.js";
import type { RpcMetrics, RpcSummary } from "../rpc/interceptors/metrics.js";

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
  readonly config: Config;
  readonly version: string;
  readonly startedAt: number;
  readonly monitor: HealthMonitor;
  readonly backends: readonly Backend[];
  readonly rpcMetrics: RpcMetrics;
  readonly registry: Registry;
  /** Fully qualified names of every service the listener serves. */
  readonly services: readonly string[];
  /** The translation write path's state (what `buffer` and `write_path` report). */
  readonly writePath: () => BatcherStatus;
  /** Buffered records per table of the translation write path. */
  readonly bufferedByTable: () => Record<string, number>;
  /** Every write path's state. */
  readonly writePaths: () => BatcherStatus[];
}

/** The service's view of itself: health, figures, configuration and identity. */
export interface SystemService {
  /** From the health monitor's last probe, without waiting for one. Unhealthy when a backend is down or the service is shutting down. */
  health(): Health;
  metrics(): Promise<MetricsSummary>;
  config(): Record<string, unknown>;
  info(): Info;
}

export function createSystemService(deps: SystemServiceDeps): SystemService {
  const uptimeSeconds = () => Math.floor((Date.now() - deps.startedAt) / 1000);
  const buffer = (): BufferFigures => {
    const s = deps.writePath();
    const { bufferMaxRecords, bufferMaxBytes } = deps.config.limits;
    const byTable = deps.bufferedByTable();
    return {
      records: s.bufferRecords,
      bytes: s.bufferBytes,
      oldestAgeMs: s.oldestAgeMs,
      utilization: Math.min(1, Math.max(s.bufferRecords / bufferMaxRecords, s.bufferBytes / bufferMaxBytes)),
      sessions: byTable.translation_sessions ?? 0,
      tasks: byTable.translation_tasks ?? 0,
      capacity: bufferMaxRecords,
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
          eventLoopLagP99Ms: (lag?.values[0]?.value ?? 0) * 1000,
        },
        buffer: buffer(),
        writePath: deps.writePath(),
        writePaths: deps.writePaths(),
      };
    },
    config: () => redactedConfig(deps.config),
    info: () => ({
      name: "persistence",
      version: deps.version,
      services: [...deps.services],
      backends: Object.fromEntries(deps.backends.map((b) => [b.name, b.kind])),
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
