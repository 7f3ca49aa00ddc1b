import { rm } from "node:fs/promises";
import path from "node:path";
import { randomUUID } from "node:crypto";
import type { SqlBackend } from "../backends/sql/sql-store.js";
import { failedPrecondition, invalidArgument, unavailable } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import { patchId, type Patch } from "../core/patch.js";
import { deadLetterPatch, overflowDir, overflowFile, selectDeadLetters, type DeadLetterRow, type DeadLetterTables } from "./dead-letters.js";
import type { WritePath } from "./write-path.js";

/** Which dead letters to retry (RetryDeadLettersRequest). */
export interface RetryRequest {
  readonly writePath: string;
  readonly table: string;
  readonly ids: readonly number[];
  /** 0: DEFAULT_LIMIT. */
  readonly limit: number;
  readonly dryRun: boolean;
}

/** What a retry did with one write path's dead letters (or with all of them). */
export interface RetryCounts {
  retried: number;
  committed: number;
  deadLetteredAgain: number;
  skipped: number;
}

export interface RetryReport extends RetryCounts {
  readonly dryRun: boolean;
  readonly writePaths: (RetryCounts & { writePath: string })[];
  readonly skippedLetters: { id: number; writePath: string; table: string; reason: string }[];
  /** Dead letters matching the filter still stored afterwards. */
  readonly remaining: number;
}

export interface DeadLetterRetryOptions {
  /** The store every write path writes to (and keeps its dead letters in). */
  readonly sql: SqlBackend;
  /** Where cut-down dead letters keep their whole record (`<data dir>/dead-letters/<write path>/`). */
  readonly dataDir: string;
  /** The write paths open on this instance: only their dead letters can be retried here. */
  readonly writePaths: () => readonly WritePath[];
  /** Names this instance in the lease's holder. */
  readonly instanceId: string;
  readonly logger: Logger;
  /** How long one chunk may wait for its commit before the retry gives up, in ms (default 30000). */
  readonly commitTimeoutMs?: number;
}

export type DeadLetterRetry = (request: RetryRequest, signal: AbortSignal) => Promise<RetryReport>;

const DEFAULT_LIMIT = 1000;
const MAX_LIMIT = 10_000;
const MAX_IDS = 1000;
/** Dead letters submitted (and deleted) together: one accept, one wait for its commit. */
const CHUNK = 500;
/** One retry at a time over every instance on the database: no dead letter is submitted twice at once. */
const LEASE = "dead-letters-retry";
/** Renewed before each chunk, so it outlives a chunk's wait for its commit by a margin. */
const LEASE_TTL_MS = 120_000;

/**
 * Retries dead letters through the write path that refused them: its batcher, at COMMITTED, so its
 * tables, guards and `prepare` step (audit's chaining) apply as to any write. A dead letter is deleted
 * only once its record committed, or once the write path stored it again as a new dead letter (the
 * batcher does that before the commit wait ends): nothing is lost, even if the instance stops midway
 * (the record is then in the write path's buffer and log, and a later retry of the same dead letter
 * writes the same stamped values again, which changes nothing).
 */
export function createDeadLetterRetry(options: DeadLetterRetryOptions): DeadLetterRetry {
  const { sql, dataDir, logger } = options;
  const db = sql.db.withTables<DeadLetterTables>();
  const commitTimeoutMs = options.commitTimeoutMs ?? 30_000;

  const validate = (request: RetryRequest) => {
    const open = options.writePaths();
    const violations: { field: string; description: string }[] = [];
    const chosen = request.writePath === "" ? open : open.filter((p) => p.name === request.writePath);
    if (open.length === 0) {
      violations.push({ field: "write_path", description: "this instance opens no write path: retry on an instance that does" });
    } else if (chosen.length === 0) {
      violations.push({ field: "write_path", description: `no write path ${JSON.stringify(request.writePath)} is open on this instance (open: ${open.map((p) => p.name).join(", ")})` });
    } else if (request.table !== "" && !chosen.some((p) => p.tables.includes(request.table))) {
      violations.push({ field: "table", description: `${JSON.stringify(request.table)} is no table of ${request.writePath === "" ? "an open write path" : `write path ${request.writePath}`} (tables: ${chosen.flatMap((p) => p.tables).join(", ")})` });
    }
    if (request.ids.length > MAX_IDS) violations.push({ field: "ids", description: `at most ${MAX_IDS} ids, got ${request.ids.length}` });
    request.ids.forEach((id, i) => {
      if (!Number.isSafeInteger(id) || id < 1) violations.push({ field: `ids[${i}]`, description: `a dead letter's id is a positive integer, got ${id}` });
    });
    if (request.limit < 0 || request.limit > MAX_LIMIT) violations.push({ field: "limit", description: `from 1 to ${MAX_LIMIT} (0 for ${DEFAULT_LIMIT}), got ${request.limit}` });
    if (violations.length > 0) throw invalidArgument(violations);
    return new Map(open.map((p) => [p.name, p]));
  };

  return async (request, signal) => {
    const open = validate(request);
    const filter = { writePath: request.writePath || undefined, table: request.table || undefined, ids: request.ids };
    const holder = `${options.instanceId}:${randomUUID()}`;
    if (!request.dryRun && !(await sql.acquireLease(LEASE, holder, LEASE_TTL_MS))) {
      throw failedPrecondition("another dead-letter retry is running on an instance of this database; try again when it has finished", {
        type: "LEASE",
        subject: LEASE,
        description: "one dead-letter retry at a time, so that no dead letter is submitted twice",
      });
    }
    try {
      const rows = (await selectDeadLetters(sql.db, filter)
        .selectAll()
        .orderBy("id")
        .limit(request.limit || DEFAULT_LIMIT)
        .execute()) as DeadLetterRow[];
      const perPath = new Map<string, RetryCounts>();
      const countsOf = (name: string) => {
        let counts = perPath.get(name);
        if (!counts) perPath.set(name, (counts = { retried: 0, committed: 0, deadLetteredAgain: 0, skipped: 0 }));
        return counts;
      };
      const skippedLetters: RetryReport["skippedLetters"] = [];
      const byPath = new Map<WritePath, { row: DeadLetterRow; patch: Patch }[]>();
      for (const row of rows) {
        const id = Number(row.id);
        const found = await readBack(open, row);
        if (typeof found === "string") {
          countsOf(row.write_path).skipped++;
          skippedLetters.push({ id, writePath: row.write_path, table: row.table_name, reason: found });
          continue;
        }
        countsOf(row.write_path).retried++;
        const list = byPath.get(found.writePath) ?? [];
        list.push({ row: { ...row, id }, patch: found.patch });
        byPath.set(found.writePath, list);
      }
      if (!request.dryRun) {
        for (const [writePath, letters] of byPath) {
          for (let i = 0; i < letters.length; i += CHUNK) {
            if (!(await sql.acquireLease(LEASE, holder, LEASE_TTL_MS))) throw unavailable("the dead-letter retry lost its lease; what it did so far stands", 1000);
            const again = await submit(writePath, letters.slice(i, i + CHUNK), signal);
            const counts = countsOf(writePath.name);
            counts.deadLetteredAgain += again;
            counts.committed += Math.min(CHUNK, letters.length - i) - again;
          }
        }
      }
      const remaining = Number((await selectDeadLetters(sql.db, filter).select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirst())?.n ?? 0);
      const writePaths = [...perPath].map(([writePath, counts]) => ({ writePath, ...counts }));
      const total = (key: keyof RetryCounts) => writePaths.reduce((n, w) => n + w[key], 0);
      const report: RetryReport = {
        dryRun: request.dryRun,
        retried: total("retried"),
        committed: total("committed"),
        deadLetteredAgain: total("deadLetteredAgain"),
        skipped: total("skipped"),
        writePaths,
        skippedLetters,
        remaining,
      };
      if (!request.dryRun && rows.length > 0) {
        logger.info({ retried: report.retried, committed: report.committed, dead_lettered_again: report.deadLetteredAgain, skipped: report.skipped }, "dead letters retried");
      }
      return report;
    } finally {
      if (!request.dryRun) await sql.releaseLease(LEASE, holder).catch((err: unknown) => logger.warn({ err }, "dead-letter retry lease not released; it expires by itself"));
    }
  };

  /** The write path a dead letter goes back to and its record, or why it cannot be retried here. */
  async function readBack(open: ReadonlyMap<string, WritePath>, row: DeadLetterRow): Promise<{ writePath: WritePath; patch: Patch } | string> {
    const writePath = open.get(row.write_path);
    if (!writePath) return `write path ${row.write_path} is not open on this instance`;
    if (!writePath.tables.includes(row.table_name)) return `table ${row.table_name} is not one of write path ${row.write_path}'s`;
    const patch = await deadLetterPatch(row, dataDir);
    return typeof patch === "string" ? patch : { writePath, patch };
  }

  /**
   * Submits one chunk at COMMITTED and, once the flush ended, deletes its dead letters (and their
   * overflow files). Returns how many the database refused again (the batcher stored those anew).
   * `CHUNK` ids fit in one delete statement.
   */
  async function submit(writePath: WritePath, letters: readonly { row: DeadLetterRow; patch: Patch }[], signal: AbortSignal): Promise<number> {
    const ids = new Set(letters.map((l) => patchId(l.patch.table, l.patch.key)));
    const refused = new Set<string>();
    // A retried record may merge with a newer buffered write of the same row: they commit, or are refused, together.
    const stop = writePath.batcher.onFlushed((_committed, deadLettered) => {
      for (const patch of deadLettered) {
        const id = patchId(patch.table, patch.key);
        if (ids.has(id)) refused.add(id);
      }
    });
    // The call's end (its deadline, a cancel) or the chunk's own time limit, whichever comes first.
    const waiting = new AbortController();
    const onCallEnd = () => waiting.abort(signal.reason);
    signal.addEventListener("abort", onCallEnd, { once: true });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      waiting.abort(new Error("commit wait timed out"));
    }, commitTimeoutMs);
    try {
      await writePath.batcher.accept(letters.map((l) => l.patch), "committed", waiting.signal);
    } catch (err) {
      if (!timedOut) throw err;
      throw unavailable(
        `write path ${writePath.name} did not commit the retried records within ${commitTimeoutMs} ms; their dead letters stay (the records commit when the database answers, and retrying them again then changes nothing)`,
        5000,
      );
    } finally {
      clearTimeout(timer);
      signal.removeEventListener("abort", onCallEnd);
      stop();
    }
    await db.deleteFrom("dead_letters").where("id", "in", letters.map((l) => l.row.id)).execute();
    for (const { row } of letters) {
      const file = overflowFile(row.payload);
      if (file) await rm(path.join(overflowDir(dataDir, row.write_path), file), { force: true });
    }
    return letters.filter((l) => refused.has(patchId(l.patch.table, l.patch.key))).length;
  }
}
