import { TranslationService } from "../../gen/persistence/v1/translation_pb.js";
import { createStreamSlots } from "../core/stream-slots.js";
import { defineModule, implement } from "../platform/module.js";
import { integer } from "../platform/settings.js";
import { scheduleCleanup } from "./translation.cleanup.js";
import { countsHooks } from "./translation.counts.js";
import { startTranslationCluster, type TranslationCluster } from "./translation.cluster.js";
import { createSessionEvents, type SessionEvents } from "./translation.events.js";
import { createTranslationBinaryMethods, createTranslationHandler } from "./translation.handler.js";
import { TRANSLATION_MIGRATIONS } from "./migrations/index.js";
import { createTranslationReads } from "./translation.reads.js";
import { createTranslationService, type TranslationService as Translation } from "./translation.service.js";
import { SESSION_WIRE, TASK_WIRE } from "./translation.fields.js";
import { TRANSLATION_PATCH_TABLES, type TranslationTables } from "./translation.table.js";
import { createTombstoneGuard } from "./translation.tombstones.js";

export interface TranslationSettings {
  /** Most records in one batch write (`PERSISTENCE_MAX_BATCH_RECORDS`, default 1000). */
  readonly maxBatchRecords: number;
  /** Most WatchSession streams open on this instance; more get RESOURCE_EXHAUSTED (`PERSISTENCE_MAX_WATCH_STREAMS`, default 1000). */
  readonly maxWatchStreams: number;
  /** Most WatchSession streams open on one session; more get RESOURCE_EXHAUSTED (`PERSISTENCE_MAX_WATCH_STREAMS_PER_SESSION`, default 16). */
  readonly maxWatchStreamsPerSession: number;
  /** Time between scheduled cleanups of expired sessions, in ms; 0 turns them off (`PERSISTENCE_CLEANUP_INTERVAL_MS`, default daily). */
  readonly cleanupIntervalMs: number;
}

/** What translation offers other modules (files belong to its sessions). */
export interface TranslationExports {
  readonly service: Translation;
}

/** Translation sessions and tasks: batched writes, reads, recovery, WatchSession and the session cleanup. */
export const translationModule = defineModule({
  name: "translation",
  services: [{ desc: TranslationService, needs: ["sql"] }],
  needs: ["sql", "events"],
  migrations: TRANSLATION_MIGRATIONS,
  settings: {
    read: (r): TranslationSettings => ({
      maxBatchRecords: r.get("max_batch_records", 1000, integer(1, 100_000), "an integer from 1 to 100000"),
      maxWatchStreams: r.get("max_watch_streams", 1000, integer(1, 1_000_000), "an integer from 1 to 1000000"),
      maxWatchStreamsPerSession: r.get("max_watch_streams_per_session", 16, integer(1, 1_000_000), "an integer from 1 to 1000000"),
      cleanupIntervalMs: r.get("cleanup_interval_ms", 86_400_000, integer(0, 366 * 86_400_000), "milliseconds from 0 (off) to a year"),
    }),
    show: (s: TranslationSettings) => ({
      max_batch_records: s.maxBatchRecords,
      max_watch_streams: s.maxWatchStreams,
      max_watch_streams_per_session: s.maxWatchStreamsPerSession,
      cleanup_interval_ms: s.cleanupIntervalMs,
    }),
  },
  async start(ctx) {
    const { sql, events: bus } = ctx.backends;
    const { settings } = ctx;
    // The write path: what an earlier run left in its log is replayed before it takes new writes.
    const writePath = await ctx.openWritePath({
      name: "translation",
      tables: TRANSLATION_PATCH_TABLES,
      mode: "lww",
      // Deleted sessions' records dropped, then the written sessions' task counters kept (translation.counts.ts).
      ...countsHooks(sql.dialect, createTombstoneGuard(sql.dialect)),
      groupOf: (patch) => patch.key[0] ?? "",
      wireRecords: [SESSION_WIRE, TASK_WIRE],
    });
    const { batcher } = writePath;
    const db = sql.db.withTables<TranslationTables>();
    const events = createSessionEvents();
    // Changes go to this instance's watchers and, through the events role, to every other instance's.
    let cluster: TranslationCluster | undefined;
    batcher.onCommit((patches) => {
      events.committed(patches);
      cluster?.committed(patches);
    });
    const everywhere: SessionEvents = {
      ...events,
      changed(sessionId) {
        events.changed(sessionId);
        cluster?.changed(sessionId);
      },
    };
    const reads = createTranslationReads({
      db,
      events,
      stopping: ctx.stopping,
      watchSlots: createStreamSlots({
        name: "WatchSession",
        keyName: "session",
        total: settings.maxWatchStreams,
        perKey: settings.maxWatchStreamsPerSession,
      }),
      dialect: sql.dialect,
      tableSizes: (tables) => sql.tableSizes(tables),
      batcher,
      countDeadLetters: writePath.countDeadLetters,
    });
    const service = createTranslationService({
      db,
      events: everywhere,
      dialect: sql.dialect,
      batcher,
      maxBatchRecords: settings.maxBatchRecords,
      countDeadLetters: writePath.countDeadLetters,
    });
    cluster = await startTranslationCluster({ bus, flushLocal: (timeoutMs) => service.flush(timeoutMs), events, logger: ctx.logger });
    const cleanup = settings.cleanupIntervalMs > 0 ? scheduleCleanup(sql, settings.cleanupIntervalMs, ctx.platform.instanceId, ctx.logger) : undefined;
    return {
      services: [
        {
          ...implement(TranslationService, createTranslationHandler(service, reads, ctx.defaultDurability, { cluster, instanceId: bus.instanceId })),
          binary: createTranslationBinaryMethods(service, ctx.defaultDurability),
        },
      ],
      exports: { service } satisfies TranslationExports,
      stop: async () => {
        await cleanup?.stop();
        await cluster?.stop();
      },
    };
  },
});
