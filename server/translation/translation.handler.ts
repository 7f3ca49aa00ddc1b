import { timestampFromMs, timestampNow, type Timestamp } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { Durability as DurabilityEnum, SortOrder } from "../../gen/persistence/v1/common_pb.js";
import { FlushScope, SessionSortField, TaskSortField, TranslationService as TranslationServiceDesc, WatchEventType } from "../../gen/persistence/v1/translation_pb.js";
import { invalidArgument } from "../core/errors.js";
import type { BinaryMethod } from "../platform/module.js";
import { wireInputMethod } from "../records/wire-input.js";
import { writePathStats } from "../rpc/write-path-stats.js";
import type { Durability } from "../core/write-batcher.js";
import { durabilityEnum, requestedDurability } from "../records/durability.js";
import { TIME_PROBLEM, timestampMicros } from "../records/fields.js";
import { SESSION, SESSION_STATUS_NAMES, TASK, TASK_STATUS_NAMES } from "./translation.fields.js";
import { statusCountsMessage } from "./translation.mapping.js";
import type { TranslationCluster } from "./translation.cluster.js";
import type { TranslationReads } from "./translation.reads.js";
import type { TranslationService } from "./translation.service.js";

/**
 * The batch writes' twins for protobuf binary requests: the records arrive as wire bytes and are
 * decoded straight into patches (see records/wire-input.ts); the replies are the RPCs' own.
 */
export function createTranslationBinaryMethods(translation: TranslationService, defaultDurability: Durability): BinaryMethod[] {
  const durabilityOf = (requested: DurabilityEnum): Durability => requestedDurability(requested, defaultDurability);
  const tasks = wireInputMethod(TranslationServiceDesc.method.batchUpsertTasks, "tasks");
  const sessions = wireInputMethod(TranslationServiceDesc.method.batchUpsertSessions, "sessions");
  return [
    {
      method: sessions,
      impl: async (req: { sessions: Uint8Array[]; durability: DurabilityEnum }, ctx: HandlerContext) =>
        acceptedReply(await translation.upsertSessionBytes(req.sessions, durabilityOf(req.durability), ctx.signal)),
    },
    {
      method: tasks,
      impl: async (req: { tasks: Uint8Array[]; durability: DurabilityEnum }, ctx: HandlerContext) =>
        acceptedReply(await translation.upsertTaskBytes(req.tasks, durabilityOf(req.durability), ctx.signal)),
    },
  ];
}

function acceptedReply({ count, durability }: { count: number; durability: Durability }) {
  return { status: "accepted", count, durability: durabilityEnum(durability), timestamp: timestampNow() };
}

/** How long Flush waits for everything accepted to commit. */
const FLUSH_TIMEOUT_MS = 10_000;

/** persistence.v1.TranslationService: maps the contract onto the translation service. */
export function createTranslationHandler(
  translation: TranslationService,
  reads: TranslationReads,
  defaultDurability: Durability,
  across: { readonly cluster: TranslationCluster; readonly instanceId: string },
): ServiceImpl<typeof TranslationServiceDesc> {
  const durabilityOf = (requested: DurabilityEnum): Durability => requestedDurability(requested, defaultDurability);
  const accepted = acceptedReply;

  return {
    async batchUpsertSessions(req, ctx) {
      return accepted(await translation.upsertSessions(req.sessions, durabilityOf(req.durability), ctx.signal));
    },
    async batchUpsertTasks(req, ctx) {
      return accepted(await translation.upsertTasks(req.tasks, durabilityOf(req.durability), ctx.signal));
    },
    async flush(req) {
      const started = performance.now();
      if (!(req.scope in FlushScope)) throw invalidArgument([{ field: "scope", description: `unknown flush scope ${req.scope}` }]);
      const result =
        req.scope === FlushScope.CLUSTER
          ? await across.cluster.flush(FLUSH_TIMEOUT_MS)
          : { ...(await translation.flush(FLUSH_TIMEOUT_MS)), instances: [across.instanceId] };
      return {
        flushedInstances: [...result.instances],
        status: result.empty ? "empty" : "flushed",
        sessionsWritten: result.sessions,
        tasksWritten: result.tasks,
        sessionsDeadLettered: result.sessionsDeadLettered,
        tasksDeadLettered: result.tasksDeadLettered,
        durationMs: Math.round(performance.now() - started),
      };
    },
    async getSession(req) {
      return { session: await reads.getSession(req.sessionId) };
    },
    async listSessions(req) {
      return reads.listSessions({
        ...dates(req.fromDate, req.toDate),
        statuses: statusNames(req.status, SESSION_STATUS_NAMES),
        llmProvider: req.llmProvider || undefined,
        sortBy: sortColumn(SESSION_SORT, req.sortBy, "sort_by") ?? "created_at",
        desc: descending(req.sortOrder, req.order, true),
        page: req.page,
        pageSize: req.pageSize,
        pageToken: req.pageToken,
      });
    },
    async listSessionTasks(req) {
      const listed = await reads.listSessionTasks({
        sessionId: req.sessionId,
        statuses: statusNames(req.status, TASK_STATUS_NAMES),
        sheetName: req.sheetName || undefined,
        sortBy: sortColumn(TASK_SORT, req.sortBy, "sort_by"),
        desc: descending(req.sortOrder, req.order, false),
        page: req.page,
        pageSize: req.pageSize,
        pageToken: req.pageToken,
      });
      return { ...listed, sessionId: req.sessionId };
    },
    async getTask(req) {
      return { task: await reads.getTask(req.taskId, req.sessionId || undefined) };
    },
    async listTasks(req) {
      return reads.listTasks({
        ...dates(req.fromDate, req.toDate),
        sessionId: req.sessionId || undefined,
        statuses: statusNames(req.status, TASK_STATUS_NAMES),
        sheetName: req.sheetName || undefined,
        batchId: req.batchId || undefined,
        sortBy: sortColumn(TASK_SORT, req.sortBy, "sort_by"),
        desc: descending(req.sortOrder, req.order, false),
        page: req.page,
        pageSize: req.pageSize,
        pageToken: req.pageToken,
      });
    },
    async listIncompleteSessions() {
      const sessions = await reads.listIncompleteSessions();
      return { count: sessions.length, sessions };
    },
    async restoreSession(req) {
      const { session, tasks } = await reads.restoreSession(req.sessionId);
      return { sessionId: req.sessionId, session, tasksCount: tasks.length, tasks, restoredAt: timestampNow() };
    },
    async *streamRestoreSession(req) {
      const restoredAt = timestampNow();
      for await (const chunk of reads.streamRestoreSession(req.sessionId, req.chunkSize)) yield { ...chunk, restoredAt };
    },
    async getStats() {
      const s = await reads.stats();
      const big = (counts: Record<string, number>) => Object.fromEntries(Object.entries(counts).map(([k, n]) => [k, BigInt(n)]));
      return {
        totalSessions: BigInt(s.totalSessions),
        totalTasks: BigInt(s.totalTasks),
        sessionsByStatus: big(s.sessionsByStatus),
        tasksByStatus: big(s.tasksByStatus),
        successRate: s.successRate,
        averageSessionSeconds: s.averageSessionSeconds,
        averageTaskMs: s.averageTaskMs,
        averageConfidence: s.averageConfidence,
        storage: s.storage.map((t) => ({ table: t.table, rows: BigInt(t.rows), dataBytes: BigInt(t.dataBytes), indexBytes: BigInt(t.indexBytes) })),
        writePath: writePathStats(s.writePath),
        sessions: statusCountsMessage(s.sessionsByStatus),
        tasks: statusCountsMessage(s.tasksByStatus),
        performance: { averageSessionTime: s.averageSessionSeconds, averageTaskTime: s.averageTaskMs / 1000, successRate: s.successRate * 100 },
        storageTotals: {
          databaseSizeMb: s.storage.reduce((sum, t) => sum + t.dataBytes + t.indexBytes, 0) / 2 ** 20,
          sessionsTableRows: BigInt(s.storage.find((t) => t.table === SESSION.table)?.rows ?? 0),
          tasksTableRows: BigInt(s.storage.find((t) => t.table === TASK.table)?.rows ?? 0),
        },
      };
    },
    async cleanupSessions(req) {
      const started = performance.now();
      const result = await translation.cleanup(req);
      return { ...result, durationMs: Math.round(performance.now() - started), status: "completed", timestamp: timestampNow() };
    },
    async deleteSession(req) {
      const { deletedTasks, hiddenTasks } = await translation.deleteSession(req.sessionId, req.soft);
      const status = req.soft ? "soft_deleted" : "deleted";
      return { status, sessionId: req.sessionId, deletedTasks, hiddenTasks, timestamp: timestampNow() };
    },
    async updateSessionStatus(req) {
      await translation.updateSessionStatus(req.sessionId, req.status, req.reason);
      return { session: await reads.getSession(req.sessionId) };
    },
    async *watchSession(req, ctx) {
      const types = { snapshot: WatchEventType.SNAPSHOT, updated: WatchEventType.UPDATED, deleted: WatchEventType.DELETED };
      for await (const event of reads.watchSession(req.sessionId, ctx.signal)) {
        yield { type: types[event.type], session: event.session, tasks: event.tasks };
      }
    },
    async getRecoveryStatus() {
      const s = await translation.recoveryStatus();
      return {
        walReplayedRecords: BigInt(s.walReplayed),
        walPendingRecords: BigInt(s.walPendingRecords),
        bufferRecords: BigInt(s.bufferRecords),
        bufferBytes: BigInt(s.bufferBytes),
        oldestUnflushedAgeMs: BigInt(Math.round(s.oldestAgeMs)),
        lastFlushAt: s.lastFlushAt === undefined ? undefined : timestampFromMs(s.lastFlushAt),
        databaseReachable: s.databaseReachable,
        retryBacklog: BigInt(s.retryBacklog),
        deadLetters: BigInt(s.deadLetters),
        incompleteSessions: s.incompleteSessions,
      };
    },
  };
}

const SESSION_SORT = {
  [SessionSortField.CREATED_AT]: "created_at",
  [SessionSortField.UPDATED_AT]: "updated_at",
  [SessionSortField.SESSION_ID]: "session_id",
  [SessionSortField.FILENAME]: "filename",
  [SessionSortField.STATUS]: "status",
} as const;

const TASK_SORT = {
  [TaskSortField.TASK_ID]: "task_id",
  [TaskSortField.SESSION_ID]: "session_id",
  [TaskSortField.STATUS]: "status",
  [TaskSortField.CREATED_AT]: "created_at",
  [TaskSortField.UPDATED_AT]: "updated_at",
  [TaskSortField.ROW_INDEX]: "row_index",
} as const;

/** The column of a sort field; undefined for the listing's default; INVALID_ARGUMENT for an unknown value. */
function sortColumn<C extends string>(columns: Readonly<Record<number, C>>, value: number, field: string): C | undefined {
  if (value === 0) return undefined;
  const column = columns[value];
  if (!column) throw invalidArgument([{ field, description: `unknown sort field ${value}` }]);
  return column;
}

/** The direction `sort_order` or its original spelling `order` asks for (they may not disagree). */
function descending(sortOrder: SortOrder, order: SortOrder, byDefault: boolean): boolean {
  if (sortOrder !== SortOrder.UNSPECIFIED && order !== SortOrder.UNSPECIFIED && sortOrder !== order) {
    throw invalidArgument([{ field: "order", description: "disagrees with sort_order; give one of them" }]);
  }
  const chosen = sortOrder || order;
  return chosen === SortOrder.UNSPECIFIED ? byDefault : chosen === SortOrder.DESC;
}

/** Status filters as stored names; an unknown value is INVALID_ARGUMENT naming its position. */
function statusNames(values: readonly number[], names: Readonly<Record<number, string>>): string[] {
  return values.map((value, i) => {
    const name = names[value];
    if (!name) throw invalidArgument([{ field: `status[${i}]`, description: `unknown status ${value}` }]);
    return name;
  });
}

/** from_date / to_date as µs bounds. */
function dates(from: Timestamp | undefined, to: Timestamp | undefined): { fromMicros?: number; toMicros?: number } {
  const micros = (field: string, ts: Timestamp | undefined) => {
    if (!ts) return undefined;
    const value = timestampMicros(ts);
    if (value === undefined) throw invalidArgument([{ field, description: TIME_PROBLEM }]);
    return value;
  };
  return { fromMicros: micros("from_date", from), toMicros: micros("to_date", to) };
}
