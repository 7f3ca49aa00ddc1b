import { AuditService as AuditServiceDesc } from "../../gen/persistence/v1/audit_pb.js";
import type { Durability } from "../core/write-batcher.js";
import { defineModule, implement } from "../platform/module.js";
import { integer } from "../platform/settings.js";
import { chainEntries } from "./audit.chain.js";
import { exportRoute } from "./audit.export-route.js";
import { AUDIT_PATCH_TABLE, type AuditTables } from "./audit.fields.js";
import { createGapChainer } from "./audit.gaps.js";
import { createAuditHandler } from "./audit.handler.js";
import { createAuditProjection } from "./audit.projection.js";
import { createAccessLog, type AccessSampling } from "./audit.access.js";
import { enforceRetention, retentionCutoff, scheduleRetention } from "./audit.retention.js";
import { createSelfAudit } from "./audit.self.js";
import { createAuditService, type AuditInput, type AuditService } from "./audit.service.js";
import { AUDIT_MIGRATIONS } from "./migrations/index.js";

export interface AuditSettings {
  /** Most entries in one WriteLogs (`PERSISTENCE_AUDIT_MAX_BATCH_ENTRIES`, default 1000). */
  readonly maxBatchEntries: number;
  /** Days of entries kept, by whole UTC days (`PERSISTENCE_AUDIT_RETENTION_DAYS`, default 180). */
  readonly retentionDays: number;
  /** Time between retention runs, in ms; 0 turns them off (`PERSISTENCE_AUDIT_RETENTION_INTERVAL_MS`, default hourly). */
  readonly retentionIntervalMs: number;
  /** Fractions of API calls the access log keeps: with side effects (`PERSISTENCE_AUDIT_ACCESS_SAMPLE_WRITES`, default 1) and read-only (`PERSISTENCE_AUDIT_ACCESS_SAMPLE_READS`, default 0.1). */
  readonly accessSampling: AccessSampling;
}

/** A fraction from 0 to 1. */
function fraction(raw: string): number | undefined {
  if (!/^(0(\.\d+)?|1(\.0+)?|\.\d+)$/.test(raw)) return undefined;
  return Number(raw);
}

/** What the audit module offers the modules after it: they record their significant actions here, never in its tables. */
export interface AuditExports {
  /** Validates and appends entries at `durability` (default: the service's); INVALID_ARGUMENT names a bad field. */
  record(entries: readonly AuditInput[], durability?: Durability): Promise<void>;
  readonly service: AuditService;
}

const WRITE_PATH = "audit";

/** Audit logs: an append-only, hash-chained SQL record, projected into the search role. */
export const auditModule = defineModule({
  name: "audit",
  services: [{ desc: AuditServiceDesc, needs: ["sql"] }],
  needs: ["sql", "search"],
  migrations: AUDIT_MIGRATIONS,
  settings: {
    read: (r): AuditSettings => ({
      maxBatchEntries: r.get("audit_max_batch_entries", 1000, integer(1, 100_000), "an integer from 1 to 100000"),
      retentionDays: r.get("audit_retention_days", 180, integer(1, 36_500), "days from 1 to 36500"),
      retentionIntervalMs: r.get("audit_retention_interval_ms", 3_600_000, integer(0, 366 * 86_400_000), "milliseconds from 0 (off) to a year"),
      accessSampling: {
        writes: r.get("audit_access_sample_writes", 1, fraction, "a fraction from 0 to 1"),
        reads: r.get("audit_access_sample_reads", 0.1, fraction, "a fraction from 0 to 1"),
      },
    }),
    show: (s: AuditSettings) => ({
      audit_max_batch_entries: s.maxBatchEntries,
      audit_retention_days: s.retentionDays,
      audit_retention_interval_ms: s.retentionIntervalMs,
      audit_access_sample_writes: s.accessSampling.writes,
      audit_access_sample_reads: s.accessSampling.reads,
    }),
  },
  async start(ctx) {
    const { sql, search } = ctx.backends;
    const { settings, logger } = ctx;
    const db = sql.db.withTables<AuditTables>();
    const projection = await createAuditProjection(db, search, logger, ctx.platform.serving);
    // Entries an earlier run left in the log are replayed here; the chain skips those already committed.
    const writePath = await ctx.openWritePath({ name: WRITE_PATH, tables: [AUDIT_PATCH_TABLE], mode: "append", prepare: chainEntries });
    const { batcher } = writePath;
    const access = await createAccessLog({ search, sampling: settings.accessSampling, recordAudit: (entries) => record(entries), logger, registry: ctx.registry });
    const service = createAuditService({ db, batcher, projection, access, maxBatchEntries: settings.maxBatchEntries });
    const record = async (entries: readonly AuditInput[], durability: Durability = ctx.defaultDurability) => {
      await service.write(entries, durability);
    };
    // Gap entries are committed at once: they stand for an entry the caller was told was taken.
    const gaps = createGapChainer(db, WRITE_PATH, (entries) => record(entries, "committed"), logger);
    let deadLettersSeen = 0;
    batcher.onCommit(() => {
      void projection.catchUp();
      const { deadLetters } = batcher.status();
      if (deadLetters > deadLettersSeen) {
        deadLettersSeen = deadLetters;
        void gaps.catchUp();
      }
    });
    // Both wait until the service serves: a backlog to project never holds up start-up.
    void projection.catchUp();
    void ctx.platform.serving.then(() => gaps.catchUp());
    const self = createSelfAudit((entries) => record(entries), logger);
    const retention =
      settings.retentionIntervalMs > 0
        ? scheduleRetention(sql, settings.retentionIntervalMs, ctx.platform.instanceId, logger, async () => {
            const result = await enforceRetention(db, projection.index, settings.retentionDays);
            const accessDropped = await access.index.dropPartitionsBefore(retentionCutoff(Date.now(), settings.retentionDays));
            return { ...result, droppedPartitions: [...result.droppedPartitions, ...accessDropped] };
          })
        : undefined;
    return {
      services: [implement(AuditServiceDesc, createAuditHandler(service, self, ctx.defaultDurability))],
      http: [exportRoute(service, self)],
      interceptors: [access.interceptor],
      exports: { record, service } satisfies AuditExports,
      stop: async () => {
        await projection.stop();
        await retention?.stop();
        await access.stop();
      },
    };
  },
});
