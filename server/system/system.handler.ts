import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { JsonObject } from "@bufbuild/protobuf";
import { SystemService as SystemServiceDesc } from "../../gen/persistence/v1/system_pb.js";
import type { RetryCounts } from "../platform/dead-letter-retry.js";
import { httpStatusKey } from "../rpc/context.js";
import { writePathStats } from "../rpc/write-path-stats.js";
import type { InstanceDirectory } from "./system.instances.js";
import type { BufferFigures, SystemService } from "./system.service.js";

/** The write buffer's figures as the contract carries them. */
export function bufferHealth(b: BufferFigures) {
  const lastFlush = b.lastFlushAt === undefined ? undefined : timestampFromMs(b.lastFlushAt);
  return {
    records: BigInt(b.records),
    bytes: BigInt(b.bytes),
    oldestAgeMs: BigInt(Math.round(b.oldestAgeMs)),
    utilization: b.utilization,
    sessionsCount: BigInt(b.sessions),
    tasksCount: BigInt(b.tasks),
    totalCount: BigInt(b.records),
    totalBuffered: BigInt(b.records),
    capacity: BigInt(b.capacity),
    usagePercent: Math.round(b.utilization * 10_000) / 100,
    lastFlush,
    lastFlushTime: lastFlush,
  };
}

/** persistence.v1.SystemService: maps the system service's answers onto the contract. */
export function createSystemHandler(system: SystemService, directory: InstanceDirectory, instanceId: string): ServiceImpl<typeof SystemServiceDesc> {
  return {
    getHealth(_req, ctx) {
      const health = system.health();
      // Load balancers and probes read the HTTP status of GET /health.
      if (!health.healthy) ctx.values.get(httpStatusKey)?.(503);
      return {
        status: health.healthy ? "healthy" : "unhealthy",
        version: health.version,
        uptimeSeconds: health.uptimeSeconds,
        backends: health.backends,
        backendsAgeMs: BigInt(Math.round(health.backendsAgeMs)),
        buffer: bufferHealth(health.buffer),
        database: health.backends.sql === "up" ? "healthy" : "unhealthy",
      };
    },
    async getMetrics() {
      const m = await system.metrics();
      return {
        uptimeSeconds: m.uptimeSeconds,
        rpcs: m.rpcs.map((r) => ({
          service: r.service,
          method: r.method,
          requests: BigInt(r.requests),
          errors: BigInt(r.errors),
          ratePerSecond: r.ratePerSecond,
          p50Ms: r.p50Ms,
          p95Ms: r.p95Ms,
          p99Ms: r.p99Ms,
          codes: Object.fromEntries(Object.entries(r.codes).map(([code, n]) => [code, BigInt(n)])),
        })),
        backends: m.backends,
        process: {
          rssBytes: BigInt(m.process.rssBytes),
          heapUsedBytes: BigInt(m.process.heapUsedBytes),
          cpuSeconds: m.process.cpuSeconds,
          eventLoopLagP99Ms: m.process.eventLoopLagP99Ms,
        },
        buffer: bufferHealth(m.buffer),
        writePath: writePathStats(m.writePath),
        writePaths: m.writePaths.map(writePathStats),
        caches: m.caches.map((c) => ({ name: c.name, hits: BigInt(c.hits), misses: BigInt(c.misses), hitRate: c.hitRate })),
      };
    },
    getConfig() {
      return { config: system.config() as JsonObject };
    },
    async getInfo() {
      const instances = await directory.list();
      return {
        ...system.info(),
        instanceId,
        instances: instances.map((i) => ({
          id: i.id,
          startedAt: timestampFromMs(i.startedAt),
          lastSeenAt: timestampFromMs(i.lastSeenAt),
          bufferedRecords: BigInt(i.bufferedRecords),
        })),
      };
    },
    echo(req) {
      return { payload: req.payload };
    },
    async retryDeadLetters(req, ctx) {
      const report = await system.retryDeadLetters({ writePath: req.writePath, table: req.table, ids: req.ids.map(Number), limit: req.limit, dryRun: req.dryRun }, ctx.signal);
      const counts = (c: RetryCounts) => ({
        retried: BigInt(c.retried),
        committed: BigInt(c.committed),
        deadLetteredAgain: BigInt(c.deadLetteredAgain),
        skipped: BigInt(c.skipped),
      });
      return {
        ...counts(report),
        dryRun: report.dryRun,
        remaining: BigInt(report.remaining),
        writePaths: report.writePaths.map((w) => ({ writePath: w.writePath, ...counts(w) })),
        skippedLetters: report.skippedLetters.map((s) => ({ id: BigInt(s.id), writePath: s.writePath, table: s.table, reason: s.reason })),
      };
    },
  };
}
