import type { Kysely } from "kysely";
import type { SqlBackend, SqlDialect } from "../backends/sql/sql-store.js";
import { failedPrecondition, invalidArgument, notFound } from "../core/errors.js";
import { nextPageToken, pageFigures, pageRequest, type PageRequest } from "../core/paging.js";
import type { StreamSlots } from "../core/stream-slots.js";
import type { WriteBatcher } from "../core/write-batcher.js";
import { requireKey } from "../records/to-patches.js";
import type { SessionEvents } from "./translation.events.js";
import { sessionView, taskView } from "./translation.mapping.js";
import * as repo from "./translation.repository.js";
import type { SessionRow, TaskRow, TranslationTables } from "./translation.table.js";

/** How long a read waits for this instance's unflushed records of what it reads to commit. */
const VISIBILITY_TIMEOUT_MS = 10_000;
/** Tasks per message of StreamRestoreSession, by default and at most. */
export const RESTORE_CHUNK = { default: 500, max: 5000 } as const;
/** Most tasks one RestoreSession page reads from the database at a time. */
const RESTORE_READ = 5000;

export interface PageInput {
  readonly page: number;
  readonly pageSize: number;
  readonly pageToken: string;
}

export interface SessionListInput extends PageInput, repo.SessionFilter {
  readonly sortBy: "created_at" | "updated_at" | "session_id" | "filename" | "status";
  readonly desc: boolean;
}

export interface TaskListInput extends PageInput, repo.TaskFilter {
  /** Sort column; the listing's own order (session, sheet, row, column) when absent. */
  readonly sortBy?: "task_id" | "session_id" | "status" | "created_at" | "updated_at" | "row_index";
  readonly desc: boolean;
}

export interface TranslationReadsDeps {
  readonly db: Kysely<TranslationTables>;
  readonly events: SessionEvents;
  /** Aborted when the service starts shutting down: watch streams end then. */
  readonly stopping: AbortSignal;
  /** Bounds the watch streams open at once, per session and in all. */
  readonly watchSlots: StreamSlots;
  readonly dialect: SqlDialect;
  /** The SQL store's own figures of each table's rows and bytes. */
  readonly tableSizes: SqlBackend["tableSizes"];
  readonly batcher: WriteBatcher;
  /** Dead letters stored in the database. */
  readonly countDeadLetters: () => Promise<number>;
}

/** Tables whose sizes GetStats reports. */
const STAT_TABLES = ["translation_sessions", "translation_tasks", "translation_tombstones", "dead_letters"];

/**
 * The read side. Reads reflect what this instance accepted: when the buffer holds records of the
 * session read (or, for reads across sessions, any record), they are flushed first.
 */
export function createTranslationReads(deps: TranslationReadsDeps) {
  const { db, batcher } = deps;
  const now = () => Date.now() * 1000;

  const visible = async (sessionId?: string) => {
    if (batcher.pendingIn(sessionId) > 0) await batcher.flush(VISIBILITY_TIMEOUT_MS);
  };
  const views = async (rows: SessionRow[]) => {
    const counts = await repo.taskCounts(db, rows.map((r) => r.session_id));
    const at = now();
    return rows.map((row) => sessionView(row, counts.get(row.session_id), at));
  };
  const existingSession = async (sessionId: string) => {
    const row = await repo.findSession(db, sessionId);
    if (!row) throw notFound("session", sessionId);
    return row;
  };
  const page = <Row>(rows: Row[], request: PageRequest, total: number, keys: (row: Row) => (string | number)[], fingerprint: string) => ({
    ...pageFigures(total, request),
    nextPageToken: rows.length === request.pageSize && request.page * request.pageSize < total ? nextPageToken(keys(rows.at(-1)!), request.page, fingerprint) : "",
  });

  return {
    async getSession(sessionId: string) {
      requireKey("session_id", sessionId);
      await visible(sessionId);
      // The row and its task counts in parallel: two short queries on two connections.
      const [row, counts] = await Promise.all([existingSession(sessionId), repo.taskCounts(db, [sessionId])]);
      return sessionView(row, counts.get(sessionId), now());
    },

    async listSessions(input: SessionListInput) {
      const fingerprint = JSON.stringify(["sessions", input.statuses, input.llmProvider, input.fromMicros, input.toMicros, input.sortBy, input.desc]);
      const request = pageRequest(input, fingerprint);
      await visible();
      const sort = { column: input.sortBy, desc: input.desc } as const;
      const [rows, total] = await Promise.all([repo.pageOfSessions(db, input, sort, request), repo.countSessions(db, input)]);
      const keys = (row: SessionRow) => repo.sortValues(row, repo.sessionOrder(sort));
      return { ...page(rows, request, total, keys, fingerprint), items: await views(rows) };
    },

    async listSessionTasks(input: TaskListInput & { sessionId: string }) {
      requireKey("session_id", input.sessionId);
      const order = repo.taskOrder(false, input.sortBy, input.desc);
      const fingerprint = JSON.stringify(["session-tasks", input.sessionId, input.statuses, input.sheetName, order]);
      const request = pageRequest(input, fingerprint);
      await visible(input.sessionId);
      const [, rows, total] = await Promise.all([existingSession(input.sessionId), repo.pageOfTasks(db, input, request, order), repo.countTasks(db, input)]);
      return { ...page(rows, request, total, (row: TaskRow) => repo.sortValues(row, order), fingerprint), items: rows.map(taskView) };
    },

    async getTask(taskId: string, sessionId: string | undefined) {
      requireKey("task_id", taskId);
      if (sessionId) requireKey("session_id", sessionId);
      await visible(sessionId);
      const rows = await repo.findTasks(db, taskId, sessionId, 11);
      if (rows.length === 0) throw notFound("task", taskId);
      if (rows.length > 1) {
        const sessions = rows.slice(0, 10).map((r) => r.session_id);
        const more = rows.length > 10 ? ", ..." : "";
        throw failedPrecondition(`task ${taskId} exists in several sessions (${sessions.join(", ")}${more}); pass session_id`, {
          type: "AMBIGUOUS_TASK_ID",
          subject: taskId,
          description: sessions.join(","),
        });
      }
      return taskView(rows[0]!);
    },

    async listTasks(input: TaskListInput) {
      if (input.sessionId) requireKey("session_id", input.sessionId);
      const order = repo.taskOrder(!input.sessionId, input.sortBy, input.desc);
      const fingerprint = JSON.stringify(["tasks", input.sessionId, input.statuses, input.sheetName, input.batchId, input.fromMicros, input.toMicros, order]);
      const request = pageRequest(input, fingerprint);
      await visible(input.sessionId || undefined);
      const [rows, total] = await Promise.all([repo.pageOfTasks(db, input, request, order), repo.countTasks(db, input)]);
      const keys = (row: TaskRow) => repo.sortValues(row, order);
      return { ...page(rows, request, total, keys, fingerprint), items: rows.map(taskView) };
    },

    /** Counts, rates, averages and storage of the translation data, with the write path's figures. */
    async stats() {
      await visible();
      const [{ sessions, tasks }, averages, storage, deadLetters] = await Promise.all([
        repo.statusCounts(db),
        repo.averages(db),
        deps.tableSizes(STAT_TABLES),
        deps.countDeadLetters(),
      ]);
      const sum = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);
      const finished = (tasks.completed ?? 0) + (tasks.failed ?? 0);
      return {
        totalSessions: sum(sessions),
        totalTasks: sum(tasks),
        sessionsByStatus: sessions,
        tasksByStatus: tasks,
        successRate: finished > 0 ? (tasks.completed ?? 0) / finished : 0,
        averageSessionSeconds: averages.sessionMicros / 1e6,
        averageTaskMs: averages.taskMs,
        averageConfidence: averages.confidence,
        storage,
        writePath: { ...batcher.status(), deadLetters },
      };
    },

    /**
     * The session now, then its view and the tasks that changed after each committed change (by any
     * instance; another snapshot when changes may have gone unseen), until
     * the caller goes away, the session is deleted (a last "deleted" message) or the service stops.
     * Changes that arrive while the caller is slow are folded into the next message. Past the bounds of
     * `watchSlots` a new watch is RESOURCE_EXHAUSTED.
     */
    async *watchSession(sessionId: string, signal: AbortSignal) {
      requireKey("session_id", sessionId);
      const release = deps.watchSlots.acquire(sessionId);
      const changedTasks = new Set<string>();
      let dirty = false;
      let resync = false;
      let wake: (() => void) | undefined;
      const unsubscribe = deps.events.subscribe(sessionId, (change) => {
        for (const id of change.taskIds) changedTasks.add(id);
        resync ||= change.resync === true;
        dirty = true;
        wake?.();
      });
      const ended = () => signal.aborted || deps.stopping.aborted;
      const onEnd = () => wake?.();
      signal.addEventListener("abort", onEnd);
      deps.stopping.addEventListener("abort", onEnd);
      try {
        await visible(sessionId);
        yield { type: "snapshot" as const, session: (await views([await existingSession(sessionId)]))[0]!, tasks: [] };
        while (!ended()) {
          if (!dirty) {
            await new Promise<void>((resolve) => (wake = resolve));
            wake = undefined;
            if (ended()) return;
          }
          dirty = false;
          const ids = [...changedTasks];
          changedTasks.clear();
          const again = resync;
          resync = false;
          const row = await repo.findSession(db, sessionId);
          if (!row) {
            yield { type: "deleted" as const, session: undefined, tasks: [] };
            return;
          }
          // Changes may have gone unseen: a fresh snapshot tells the caller to take the session as it is now.
          if (again) {
            yield { type: "snapshot" as const, session: (await views([row]))[0]!, tasks: [] };
            continue;
          }
          const tasks = await repo.findTasksByIds(db, sessionId, ids);
          yield { type: "updated" as const, session: (await views([row]))[0]!, tasks: tasks.map(taskView) };
        }
      } finally {
        release();
        unsubscribe();
        signal.removeEventListener("abort", onEnd);
        deps.stopping.removeEventListener("abort", onEnd);
      }
    },

    async listIncompleteSessions() {
      await visible();
      return views(await repo.incompleteSessions(db));
    },

    /** The session and all its pending or processing tasks in spreadsheet order, read in slices of RESTORE_READ. */
    async restoreSession(sessionId: string) {
      requireKey("session_id", sessionId);
      await visible(sessionId);
      const session = (await views([await existingSession(sessionId)]))[0]!;
      const tasks = [];
      for await (const chunk of unfinished(sessionId, RESTORE_READ)) tasks.push(...chunk);
      return { session, tasks: tasks.map(taskView) };
    },

    /** The same as restoreSession in chunks of `chunkSize` tasks: the first chunk carries the session and the task count. */
    async *streamRestoreSession(sessionId: string, chunkSize: number) {
      requireKey("session_id", sessionId);
      if (chunkSize < 0 || chunkSize > RESTORE_CHUNK.max) {
        throw invalidArgument([{ field: "chunk_size", description: `must be between 1 and ${RESTORE_CHUNK.max}` }]);
      }
      await visible(sessionId);
      const session = (await views([await existingSession(sessionId)]))[0]!;
      const count = await repo.countTasks(db, { sessionId, statuses: ["pending", "processing"] });
      let first = true;
      for await (const chunk of unfinished(sessionId, chunkSize || RESTORE_CHUNK.default)) {
        yield { session: first ? session : undefined, tasksCount: first ? count : 0, tasks: chunk.map(taskView) };
        first = false;
      }
      if (first) yield { session, tasksCount: 0, tasks: [] };
    },
  };

  async function* unfinished(sessionId: string, size: number) {
    let after: (string | number)[] | undefined;
    for (;;) {
      const rows = await repo.unfinishedTasks(db, sessionId, size, after);
      if (rows.length > 0) yield rows;
      if (rows.length < size) return;
      after = repo.sortValues(rows.at(-1)!, repo.TASK_POSITION);
    }
  }
}

export type TranslationReads = ReturnType<typeof createTranslationReads>;
