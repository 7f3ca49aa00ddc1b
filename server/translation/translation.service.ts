import type { Kysely } from "kysely";
import type { SqlDialect } from "../backends/sql/sql-store.js";
import { invalidArgument, notFound, type FieldViolation } from "../core/errors.js";
import type { Durability, WriteBatcher } from "../core/write-batcher.js";
import type { Patch } from "../core/patch.js";
import { createPatch } from "../core/patch.js";
import type { EntitySpec } from "../records/fields.js";
import { SESSION, SESSION_STATUS_NAMES, SESSION_WIRE, TASK, TASK_WIRE } from "./translation.fields.js";
import { cleanupSessions, type CleanupRequest, type CleanupResult } from "./translation.cleanup.js";
import type { SessionEvents } from "./translation.events.js";
import * as repo from "./translation.repository.js";
import { requireKey, toPatches, type ConvertedBatch } from "../records/to-patches.js";
import type { WireRecords } from "../records/wire-records.js";
import type { TranslationTables } from "./translation.table.js";

type IncomingRecord = Parameters<typeof toPatches>[1][number];

export interface AcceptedWrite {
  count: number;
  durability: Durability;
}

export interface RecoveryStatus {
  walReplayed: number;
  walPendingRecords: number;
  bufferRecords: number;
  bufferBytes: number;
  oldestAgeMs: number;
  lastFlushAt: number | undefined;
  databaseReachable: boolean;
  retryBacklog: number;
  deadLetters: number;
  incompleteSessions: number;
}

export interface TranslationServiceDeps {
  readonly db: Kysely<TranslationTables>;
  /** Told about deletes and status changes (watchers follow them). */
  readonly events: SessionEvents;
  readonly dialect: SqlDialect;
  readonly batcher: WriteBatcher;
  /** Most records in one batch write. */
  readonly maxBatchRecords: number;
  /** Dead letters stored in the database (for recovery status). */
  readonly countDeadLetters: () => Promise<number>;
}

/** What one Flush did: records committed, and records the database refused (moved to the dead letters), per entity. */
export interface FlushResult {
  readonly empty: boolean;
  readonly sessions: number;
  readonly tasks: number;
  readonly sessionsDeadLettered: number;
  readonly tasksDeadLettered: number;
}

/** Remembered session ids known to exist, so updates need no lookup; bounded, oldest forgotten first. */
const KNOWN_SESSIONS_MAX = 100_000;

/** Translation rules over the write batcher and the translation tables. */
export interface TranslationService {
  upsertSessions(records: readonly IncomingRecord[], durability: Durability, signal?: AbortSignal): Promise<AcceptedWrite>;
  upsertTasks(records: readonly IncomingRecord[], durability: Durability, signal?: AbortSignal): Promise<AcceptedWrite>;
  /** The same, from the records' protobuf wire bytes (binary requests): decoded straight into patches, and logged as they came. */
  upsertSessionBytes(records: readonly Uint8Array[], durability: Durability, signal?: AbortSignal): Promise<AcceptedWrite>;
  upsertTaskBytes(records: readonly Uint8Array[], durability: Durability, signal?: AbortSignal): Promise<AcceptedWrite>;
  /** Commits everything this instance accepted (at most `timeoutMs`); records written and dead-lettered per entity. */
  flush(timeoutMs: number): Promise<FlushResult>;
  recoveryStatus(): Promise<RecoveryStatus>;
  /**
   * Deletes a session and its tasks (hides it with `soft`), this instance's buffered records of it
   * included. A tombstone makes records stamped before now, flushed later by any instance, miss it.
   */
  deleteSession(sessionId: string, soft: boolean): Promise<{ deletedTasks: number; hiddenTasks: number }>;
  /** Sets a session's status (and keeps `reason` in its metadata) at COMMITTED durability. */
  updateSessionStatus(sessionId: string, status: number, reason: string): Promise<void>;
  /** Deletes sessions past their retention (see translation.cleanup.ts). */
  cleanup(request: CleanupRequest): Promise<CleanupResult>;
  /** Whether the session exists and is not deleted: in this instance's buffer or in the database. */
  sessionExists(sessionId: string): Promise<boolean>;
  /** Which of these sessions were deleted (a tombstone, and no live session written since). */
  deletedSessions(sessionIds: readonly string[]): Promise<Set<string>>;
}

export function createTranslationService(deps: TranslationServiceDeps): TranslationService {
  const { db, batcher } = deps;
  const knownSessions = new Set<string>();
  const remember = (id: string) => {
    if (knownSessions.size >= KNOWN_SESSIONS_MAX) knownSessions.delete(knownSessions.values().next().value as string);
    knownSessions.add(id);
  };

  /**
   * Fields required on an entity's first write may be left out only when the entity already exists:
   * in this batch, in this instance's buffer, or in the database. While the database is unreachable
   * the write is given the benefit of the doubt.
   */
  async function missingRequired(spec: EntitySpec, patches: readonly Patch[], lacking: Map<number, string[]>): Promise<FieldViolation[]> {
    const unknown = new Map<number, string>();
    for (const [index] of lacking) {
      const patch = patches[index]!;
      const id = patch.key[0]!;
      const earlier = patches.slice(0, index).some((p) => p.key[0] === id && spec.requiredOnCreate.every((f) => p.fields.has(f)));
      const buffered = batcher.pending(spec.table, patch.key);
      if (earlier || knownSessions.has(id) || (buffered && spec.requiredOnCreate.every((f) => buffered.fields.has(f)))) continue;
      unknown.set(index, id);
    }
    if (unknown.size === 0) return [];
    let existing: Set<string>;
    try {
      const rows = await db.selectFrom("translation_sessions").select("session_id").where("session_id", "in", [...new Set(unknown.values())]).execute();
      existing = new Set(rows.map((r) => r.session_id));
    } catch {
      return [];
    }
    existing.forEach(remember);
    return [...unknown]
      .filter(([, id]) => !existing.has(id))
      .flatMap(([index]) =>
        (lacking.get(index) ?? []).map((field) => ({
          field: `${spec.listName}[${index}].${field}`,
          description: `is required on the first write of a ${spec === SESSION ? "session" : "task"}`,
        })),
      );
  }

  async function upsert(spec: EntitySpec, records: readonly IncomingRecord[], durability: Durability, signal?: AbortSignal) {
    return accept(spec, toPatches(spec, records, Date.now() * 1000, deps.maxBatchRecords), durability, signal);
  }

  async function upsertBytes(spec: EntitySpec, wire: WireRecords, records: readonly Uint8Array[], durability: Durability, signal?: AbortSignal) {
    const receivedAt = Date.now() * 1000;
    const batch = wire.decode(records, receivedAt, deps.maxBatchRecords);
    return accept(spec, batch, durability, signal, () => wire.logFrame(records, receivedAt));
  }

  async function accept(spec: EntitySpec, batch: ConvertedBatch, durability: Durability, signal?: AbortSignal, logPayload?: () => Buffer) {
    const { patches, violations, lacking } = batch;
    if (violations.length > 0) throw invalidArgument(violations);
    const missing = lacking.size > 0 ? await missingRequired(spec, patches, lacking) : [];
    if (missing.length > 0) throw invalidArgument(missing);
    const reached = await batcher.accept(patches, durability, signal, logPayload);
    if (spec === SESSION) for (const p of patches) if (p.fields.has("filename")) remember(p.key[0]!);
    return { count: patches.length, durability: reached };
  }


  return {
    async deleteSession(sessionId, soft) {
      requireKey("session_id", sessionId);
      const deletedAt = Date.now() * 1000;
      const buffered = batcher.discard(sessionId);
      const session = await repo.findSession(db, sessionId);
      const tasks = await repo.countTasks(db, { sessionId, statuses: [] });
      if (!session && tasks === 0 && buffered === 0) throw notFound("session", sessionId);
      await repo.writeTombstone(db, deps.dialect, sessionId, deletedAt);
      knownSessions.delete(sessionId);
      if (soft) {
        await repo.markDeleted(db, sessionId, deletedAt);
        deps.events.changed(sessionId);
        return { deletedTasks: 0, hiddenTasks: tasks };
      }
      const deletedTasks = await repo.purgeSession(db, deps.dialect, sessionId);
      deps.events.changed(sessionId);
      return { deletedTasks, hiddenTasks: 0 };
    },
    async updateSessionStatus(sessionId, status, reason) {
      requireKey("session_id", sessionId);
      const name = SESSION_STATUS_NAMES[status];
      if (!name) throw invalidArgument([{ field: "status", description: status ? `unknown status ${status}` : "is required" }]);
      if (batcher.pendingIn(sessionId) > 0) await batcher.flush(10_000);
      const row = await repo.findSession(db, sessionId);
      if (!row) throw notFound("session", sessionId);
      const fields: [string, string][] = [["status", name]];
      if (reason) {
        const metadata = { ...(row.metadata ? (JSON.parse(row.metadata) as object) : {}), status_reason: reason };
        fields.push(["metadata", JSON.stringify(metadata)]);
      }
      await batcher.accept([createPatch(SESSION.table, [sessionId], Date.now() * 1000, fields)], "committed");
    },
    cleanup: (request) => cleanupSessions(db, deps.dialect, request),
    async sessionExists(sessionId) {
      if (knownSessions.has(sessionId) || batcher.pending(SESSION.table, [sessionId])) return true;
      return (await repo.findSession(db, sessionId)) !== undefined;
    },
    async deletedSessions(sessionIds) {
      if (sessionIds.length === 0) return new Set();
      const ids = [...sessionIds];
      const tombstones = await db.selectFrom("translation_tombstones").select("session_id").where("session_id", "in", ids).execute();
      const live = await db.selectFrom("translation_sessions").select("session_id").where("session_id", "in", ids).where("deleted_at", "is", null).execute();
      const alive = new Set(live.map((r) => r.session_id));
      return new Set(tombstones.map((r) => r.session_id).filter((id) => !alive.has(id) && !batcher.pending(SESSION.table, [id])));
    },
    upsertSessions: (records, durability, signal) => upsert(SESSION, records, durability, signal),
    upsertTasks: (records, durability, signal) => upsert(TASK, records, durability, signal),
    upsertSessionBytes: (records, durability, signal) => upsertBytes(SESSION, SESSION_WIRE, records, durability, signal),
    upsertTaskBytes: (records, durability, signal) => upsertBytes(TASK, TASK_WIRE, records, durability, signal),
    async flush(timeoutMs) {
      const { empty, counts } = await batcher.flush(timeoutMs);
      const { written, deadLettered } = counts;
      return {
        empty,
        sessions: written[SESSION.table] ?? 0,
        tasks: written[TASK.table] ?? 0,
        sessionsDeadLettered: deadLettered[SESSION.table] ?? 0,
        tasksDeadLettered: deadLettered[TASK.table] ?? 0,
      };
    },
    async recoveryStatus() {
      const s = batcher.status();
      let incompleteSessions = 0;
      let deadLetters = s.deadLetters;
      let databaseReachable = s.databaseReachable;
      try {
        const row = await db
          .selectFrom("translation_sessions")
          .select((eb) => eb.fn.countAll<number>().as("n"))
          .where("status", "in", ["pending", "processing"])
          .executeTakeFirst();
        incompleteSessions = Number(row?.n ?? 0);
        deadLetters = await deps.countDeadLetters();
      } catch {
        databaseReachable = false;
      }
      return {
        walReplayed: s.walReplayed,
        walPendingRecords: s.walPendingRecords,
        bufferRecords: s.bufferRecords,
        bufferBytes: s.bufferBytes,
        oldestAgeMs: s.oldestAgeMs,
        lastFlushAt: s.lastFlushAt,
        databaseReachable,
        retryBacklog: s.retryBacklog,
        deadLetters,
        incompleteSessions,
      };
    },
  };
}
