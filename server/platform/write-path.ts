import { existsSync, mkdirSync, readdirSync, renameSync } from "node:fs";
import path from "node:path";
import type { Kysely } from "kysely";
import type { Registry } from "prom-client";
import { createPatchWriter } from "../backends/sql/patch-writer.js";
import type { PatchGroups, PatchTable, WriteMode } from "../core/patch.js";
import type { SqlBackend } from "../backends/sql/sql-store.js";
import type { Logger } from "../core/logger.js";
import type { Patch } from "../core/patch.js";
import { isSegmentFile, openWal } from "../core/wal.js";
import { createWriteBatcher, deserializePatches, type WriteBatcher } from "../core/write-batcher.js";
import { isWireFrame, readWireFrame, type WireRecords } from "../records/wire-records.js";

/** The limits of one write path (see WriteBatcherOptions for each). */
export interface WritePathLimits {
  readonly flushMaxRecords: number;
  readonly flushIntervalMs: number;
  readonly maxRecords: number;
  readonly maxBytes: number;
}

export interface WritePathOptions {
  /** Names it in metrics (`write_path`), logs, dead letters and its log directory (`<data dir>/wal/<name>`). */
  readonly name: string;
  /** Tables in the order a flush writes them. */
  readonly tables: readonly PatchTable[];
  /** `lww` or `append` (see WriteMode). */
  readonly mode: WriteMode;
  readonly sql: SqlBackend;
  readonly dataDir: string;
  /** Whether accepted writes are appended to the write-ahead log (PERSISTENCE_WAL). */
  readonly logWrites: boolean;
  readonly limits: WritePathLimits;
  /** Runs inside each flush transaction before the rows are written; returns what to write instead. */
  readonly prepare?: (trx: Kysely<unknown>, groups: PatchGroups) => Promise<PatchGroups>;
  /** Runs inside each flush transaction after the rows are written, with what was written. */
  readonly finish?: (trx: Kysely<unknown>, written: PatchGroups) => Promise<void>;
  /** Groups patches so reads can ask whether a group has unflushed records. */
  readonly groupOf?: (patch: Patch) => string;
  /** The decoders of the wire records this path's writers log as received (see records/wire-records.ts), to replay them. */
  readonly wireRecords?: readonly WireRecords[];
  readonly logger: Logger;
  readonly registry: Registry;
}

/** An open write path: its batcher, and its dead letters. */
export interface WritePath {
  readonly name: string;
  /** Its tables' names, in flush order. */
  readonly tables: readonly string[];
  readonly batcher: WriteBatcher;
  countDeadLetters(): Promise<number>;
}

/**
 * Opens a named write path: a patch writer for its tables, a write-ahead log of its own, and a batcher
 * in front, with what an earlier run left in the log read back before it takes writes.
 */
export async function openWritePath(options: WritePathOptions): Promise<WritePath> {
  const { name, logger } = options;
  const writer = await createPatchWriter(options.sql, options.tables, {
    mode: options.mode,
    writePath: name,
    overflowDir: path.join(options.dataDir, "dead-letters", name),
    ...(options.prepare ? { prepare: options.prepare } : {}),
    ...(options.finish ? { finish: options.finish } : {}),
  });
  const dir = walDir(options.dataDir, name);
  const log = await openWal(dir);
  const batcher = createWriteBatcher({
    name,
    sink: { write: writer.write, deadLetter: writer.deadLetter, ping: options.sql.ping },
    tables: options.tables.map((t) => t.name),
    ...(options.groupOf ? { groupOf: options.groupOf } : {}),
    wal: log.wal,
    logWrites: options.logWrites,
    ...options.limits,
    logger,
    registry: options.registry,
  });
  const decoders = new Map((options.wireRecords ?? []).map((w) => [w.table, w]));
  const replayed = log.replayed.flatMap((payload) => {
    // Frames of patches (JSON, also all that earlier versions wrote) or of records as received.
    if (!isWireFrame(payload)) return deserializePatches(payload);
    const { patches, violations } = readWireFrame(payload, decoders);
    // Accepted once, so kept: a rule tightened since then does not drop what was acknowledged.
    if (violations.length > 0) logger.warn({ write_path: name, violations: violations.slice(0, 10) }, "replayed records no longer pass validation; kept as accepted");
    return patches;
  });
  log.countReplayed(replayed.length);
  batcher.restore(replayed);
  if (replayed.length > 0 || log.discardedBytes > 0) {
    const entry = { write_path: name, records: replayed.length, discarded_bytes: log.discardedBytes, resynced_frames: log.resyncedFrames };
    // Frames after a damaged stretch mean the log was harmed mid-file, not just cut short by a crash.
    if (log.resyncedFrames > 0) logger.warn(entry, "write-ahead log replayed");
    else logger.info(entry, "write-ahead log replayed");
  }
  return { name, tables: options.tables.map((t) => t.name), batcher, countDeadLetters: writer.countDeadLetters };
}

/**
 * `<data dir>/wal/<name>`. Before there were several write paths, the translation log lived in
 * `<data dir>/wal` itself: its segments move into their write path's folder, unread frames included.
 */
function walDir(dataDir: string, name: string): string {
  const root = path.join(dataDir, "wal");
  const dir = path.join(root, name);
  if (name !== LEGACY_WRITE_PATH || !existsSync(root)) return dir;
  const legacy = readdirSync(root).filter(isSegmentFile);
  if (legacy.length > 0) mkdirSync(dir, { recursive: true });
  for (const file of legacy) renameSync(path.join(root, file), path.join(dir, file));
  return dir;
}

/** The one write path that existed before logs had folders of their own. */
const LEGACY_WRITE_PATH = "translation";
