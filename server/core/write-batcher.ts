import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { resourceExhausted, unavailable } from "./errors.js";
import type { Logger } from "./logger.js";
import { clonePatch, mergeInto, patchId, restorePatch, type FieldValue, type Patch } from "./patch.js";
import type { WriteAheadLog } from "./wal.js";

/** How far a write had to travel before it was acknowledged. */
export type Durability = "accepted" | "logged" | "committed";

/** Where merged patches go: the database (see backends/sql/patch-writer.ts). */
export interface PatchSink {
  /** Writes all groups in one transaction, tables in the order given; all or nothing. Returns statements run. */
  write(groups: readonly { table: string; patches: readonly Patch[] }[]): Promise<number>;
  /** Stores patches the database refused, with the reason. */
  deadLetter(rejected: readonly { patch: Patch; reason: string }[]): Promise<void>;
  /** Resolves when the database answers: tells an outage (retry later) from a bad row (bisect). */
  ping(): Promise<void>;
}

export interface WriteBatcherOptions {
  /** Names this batcher in metrics and logs ("translation"). */
  readonly name: string;
  readonly sink: PatchSink;
  /** Tables in the order a flush writes them (sessions before tasks). */
  readonly tables: readonly string[];
  /** The write-ahead log: what a shutdown could not flush is left there. */
  readonly wal: WriteAheadLog;
  /** Whether every accepted write is appended to the log; when off, LOGGED writes are answered at COMMITTED. */
  readonly logWrites: boolean;
  /** Flush once this many records are buffered. */
  readonly flushMaxRecords: number;
  /** Flush once the oldest buffered record is this old, in ms. */
  readonly flushIntervalMs: number;
  /** Most records held unflushed (buffered plus being written) before writers get RESOURCE_EXHAUSTED. */
  readonly maxRecords: number;
  /** Most bytes held unflushed before writers get RESOURCE_EXHAUSTED. */
  readonly maxBytes: number;
  /** First and longest pause between attempts while the database is unreachable, in ms (default 100 / 5000). */
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
  /** Groups patches (translation: by session) so reads can ask whether a group has unflushed records. */
  readonly groupOf?: (patch: Patch) => string;
  readonly logger: Logger;
  readonly registry: Registry;
}

/** Records a Flush saw committed, and moved to the dead letters, per table. */
export interface FlushCounts {
  readonly written: Record<string, number>;
  readonly deadLettered: Record<string, number>;
}

export interface BatcherStatus {
  /** The write path's name. */
  name: string;
  bufferRecords: number;
  bufferBytes: number;
  oldestAgeMs: number;
  lastFlushAt: number | undefined;
  flushes: number;
  recordsWritten: number;
  statements: number;
  retries: number;
  deadLetters: number;
  /** Records waiting for the database to come back (0 while flushes succeed). */
  retryBacklog: number;
  databaseReachable: boolean;
  walReplayed: number;
  /** Records in the write-ahead log not yet known to be committed. */
  walPendingRecords: number;
}

export interface WriteBatcher {
  /**
   * Takes validated patches (and ownership of them: later records merge into them), buffers them
   * merged per key, appends them to the log, and resolves
   * once `durability` is reached, with the durability reached. Throws RESOURCE_EXHAUSTED when the
   * buffer is full (nothing is taken then) and UNAVAILABLE once closing. `logPayload` makes what the
   * log keeps of these patches when the caller has it in hand already (see records/wire-records.ts: the
   * write path's replay must read it back); by default the patches are serialized.
   */
  accept(patches: readonly Patch[], durability: Durability, signal?: AbortSignal, logPayload?: () => Buffer): Promise<Durability>;
  /** Makes everything accepted so far committed (or dead-lettered); UNAVAILABLE if that takes longer than `timeoutMs`. */
  flush(timeoutMs: number): Promise<{ empty: boolean; counts: FlushCounts }>;
  /** The buffered (not yet committed) state of one row, for read-your-writes. */
  pending(table: string, key: readonly string[]): Patch | undefined;
  /** Unflushed rows in a group (see WriteBatcherOptions.groupOf); all unflushed rows without one. */
  pendingIn(group?: string): number;
  /** Unflushed rows per table (one pass over the buffer: for health checks, not hot paths). */
  pendingByTable(): Record<string, number>;
  /** Forgets the buffered (not yet being written) records of a group; returns how many rows they were. */
  discard(group: string): number;
  /** Calls `listener` with the patches every flush commits (not those it dead-letters); returns the unsubscribe function. */
  onCommit(listener: (patches: readonly Patch[]) => void): () => void;
  /** Calls `listener` after every flush with the patches it committed and those it moved to the dead letters (stored there already); returns the unsubscribe function. */
  onFlushed(listener: (committed: readonly Patch[], deadLettered: readonly Patch[]) => void): () => void;
  /** Loads patches read back from the log at start-up. */
  restore(patches: readonly Patch[]): void;
  status(): BatcherStatus;
  /** Stops taking writes, flushes within `timeoutMs`, and leaves what remains in the log. */
  close(timeoutMs: number): Promise<void>;
}

interface Waiter {
  readonly seq: number;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

/**
 * The write path's heart: a coalescing buffer in front of the database. Flushes by size, by age of the
 * oldest record, on demand and at shutdown; one at a time, each draining the whole buffer in one
 * transaction. A database outage keeps everything and retries with backoff; a chunk the database
 * refuses is bisected so the good rows commit and each bad one goes to the dead letters.
 */
export function createWriteBatcher(options: WriteBatcherOptions): WriteBatcher {
  const { sink, wal, logger } = options;
  const retryMinMs = options.retryMinMs ?? 100;
  const retryMaxMs = options.retryMaxMs ?? 5000;

  let buffer = new Map<string, Patch>();
  let bufferBytes = 0;
  /** The batch being written, until it commits. */
  let inflight = new Map<string, Patch>();
  let inflightBytes = 0;
  /** When each buffered record was first accepted (re-buffered records keep theirs). */
  let oldestAcceptedAt: number | undefined;
  let inflightOldest: number | undefined;

  let acceptedSeq = 0;
  let committedSeq = 0;
  let waiters: Waiter[] = [];
  let flushing: Promise<void> | undefined;
  let flushRequested = false;
  let ageTimer: NodeJS.Timeout | undefined;
  let retryTimer: NodeJS.Timeout | undefined;
  let failures = 0;
  /** Log appends failed in a row (a full or failing disk). */
  let walFailures = 0;
  let closing = false;
  /** Called after each flush with what it committed and what it moved to the dead letters. */
  const flushListeners = new Set<(committed: readonly Patch[], deadLettered: readonly Patch[]) => void>();
  const onFlushed = (listener: (committed: readonly Patch[], deadLettered: readonly Patch[]) => void) => {
    flushListeners.add(listener);
    return () => void flushListeners.delete(listener);
  };
  const onCommit = (listener: (patches: readonly Patch[]) => void) => onFlushed((committed) => listener(committed));
  /** Unflushed entries (buffered or being written) per group. */
  const groupCounts = new Map<string, number>();
  const countGroup = (patch: Patch, delta: number) => {
    if (!options.groupOf) return;
    const group = options.groupOf(patch);
    const n = (groupCounts.get(group) ?? 0) + delta;
    if (n > 0) groupCounts.set(group, n);
    else groupCounts.delete(group);
  };

  const totals = { flushes: 0, recordsWritten: 0, statements: 0, retries: 0, deadLetters: 0, walReplayed: 0 };
  let lastFlushAt: number | undefined;
  let reachable = true;

  const metrics = createMetrics(options, () => ({
    records: buffer.size + inflight.size,
    bytes: bufferBytes + inflightBytes,
    oldestAgeMs: oldestAge(),
  }));

  function oldestAge(): number {
    const oldest = Math.min(oldestAcceptedAt ?? Infinity, inflightOldest ?? Infinity);
    return oldest === Infinity ? 0 : Date.now() - oldest;
  }

  function bufferPatch(patch: Patch, acceptedAt: number): void {
    const id = patchId(patch.table, patch.key);
    const current = buffer.get(id);
    if (current) {
      const before = current.bytes;
      mergeInto(current, patch);
      bufferBytes += current.bytes - before;
    } else {
      buffer.set(id, patch);
      bufferBytes += patch.bytes;
      countGroup(patch, 1);
    }
    oldestAcceptedAt = Math.min(oldestAcceptedAt ?? acceptedAt, acceptedAt);
  }

  function scheduleAgeFlush(): void {
    if (ageTimer || buffer.size === 0 || retryTimer) return;
    const due = Math.max(0, (oldestAcceptedAt ?? Date.now()) + options.flushIntervalMs - Date.now());
    ageTimer = setTimeout(() => {
      ageTimer = undefined;
      requestFlush();
    }, due);
  }

  function requestFlush(): Promise<void> {
    flushRequested = true;
    flushing ??= runFlushes().finally(() => {
      flushing = undefined;
      scheduleAgeFlush();
    });
    return flushing;
  }

  async function runFlushes(): Promise<void> {
    while (flushRequested && !retryTimer) {
      flushRequested = false;
      await flushOnce();
    }
  }

  async function flushOnce(): Promise<void> {
    if (buffer.size === 0) {
      settleWaiters(acceptedSeq);
      return;
    }
    if (ageTimer) clearTimeout(ageTimer);
    ageTimer = undefined;
    const boundary = wal.rotate();
    inflight = buffer;
    inflightBytes = bufferBytes;
    inflightOldest = oldestAcceptedAt;
    buffer = new Map();
    bufferBytes = 0;
    oldestAcceptedAt = undefined;
    const seqAtStart = acceptedSeq;
    const groups = options.tables
      .map((table) => ({ table, patches: [...inflight.values()].filter((p) => p.table === table) }))
      .filter((g) => g.patches.length > 0);

    const started = performance.now();
    let statements: number;
    let deadLettered: readonly Patch[];
    try {
      ({ statements, deadLettered } = await writeOrBisect(groups));
    } catch (err) {
      rebuffer(err);
      return;
    }
    const refused = new Set(deadLettered);
    const committed = [...inflight.values()].filter((p) => !refused.has(p));
    reachable = true;
    failures = 0;
    totals.flushes++;
    totals.recordsWritten += committed.length;
    totals.statements += statements;
    lastFlushAt = Date.now();
    metrics.flushSeconds.observe({ write_path: options.name }, (performance.now() - started) / 1000);
    metrics.flushes.inc({ write_path: options.name, result: "ok" });
    const perTable = new Map<string, number>();
    for (const patch of committed) perTable.set(patch.table, (perTable.get(patch.table) ?? 0) + 1);
    for (const [table, n] of perTable) metrics.records.inc({ write_path: options.name, table }, n);
    if (statements > 0) metrics.rowsPerStatement.observe({ write_path: options.name }, committed.length / statements);
    metrics.statements.inc({ write_path: options.name }, statements);
    for (const patch of inflight.values()) countGroup(patch, -1);
    inflight = new Map();
    inflightBytes = 0;
    inflightOldest = undefined;
    settleWaiters(seqAtStart);
    for (const listener of flushListeners) listener(committed, deadLettered);
    await wal.truncateBefore(boundary).catch((err: unknown) => logger.error({ err }, "write-ahead log truncation failed"));
  }

  /** The database is unreachable: keep everything (the batch goes back under newer records), wait, retry. */
  function rebuffer(err: unknown): void {
    reachable = false;
    failures++;
    totals.retries++;
    metrics.flushes.inc({ write_path: options.name, result: "retry" });
    metrics.retries.inc({ write_path: options.name });
    const batch = inflight;
    const batchOldest = inflightOldest;
    inflight = new Map();
    inflightBytes = 0;
    inflightOldest = undefined;
    for (const [id, older] of batch) {
      const newer = buffer.get(id);
      if (newer) {
        bufferBytes -= newer.bytes;
        mergeInto(older, newer);
        countGroup(newer, -1);
      }
      buffer.set(id, older);
      bufferBytes += older.bytes;
    }
    const oldest = Math.min(oldestAcceptedAt ?? Infinity, batchOldest ?? Infinity);
    oldestAcceptedAt = oldest === Infinity ? undefined : oldest;
    const delay = Math.min(retryMaxMs, retryMinMs * 2 ** Math.min(failures - 1, 16)) * (0.5 + Math.random() / 2);
    logger.warn({ write_path: options.name, err: String((err as Error).message ?? err), records: buffer.size, retry_in_ms: Math.round(delay) }, "flush failed; retrying");
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      void requestFlush();
    }, delay);
  }

  /**
   * Writes the groups; when the database refuses them but answers pings, bisects down to the bad rows
   * and moves those to the dead letters. Returns the statements run and the rows dead-lettered.
   */
  async function writeOrBisect(groups: { table: string; patches: Patch[] }[]): Promise<{ statements: number; deadLettered: Patch[] }> {
    try {
      return { statements: await sink.write(groups), deadLettered: [] };
    } catch (err) {
      if (!(await answers())) throw err;
      logger.warn({ write_path: options.name, err: (err as Error).message }, "flush refused; isolating the rows at fault");
    }
    let statements = 0;
    const rejected: { patch: Patch; reason: string }[] = [];
    const bisect = async (table: string, patches: Patch[]): Promise<void> => {
      try {
        statements += await sink.write([{ table, patches }]);
      } catch (err) {
        if (!(await answers())) throw err;
        if (patches.length === 1) {
          rejected.push({ patch: patches[0]!, reason: (err as Error).message });
          return;
        }
        const middle = Math.ceil(patches.length / 2);
        await bisect(table, patches.slice(0, middle));
        await bisect(table, patches.slice(middle));
      }
    };
    for (const group of groups) await bisect(group.table, group.patches);
    await sink.deadLetter(rejected);
    for (const { patch, reason } of rejected) {
      totals.deadLetters++;
      metrics.deadLetters.inc({ write_path: options.name, table: patch.table });
      logger.error({ write_path: options.name, table: patch.table, key: patch.key, reason }, "record moved to dead letters");
    }
    return { statements, deadLettered: rejected.map((r) => r.patch) };
  }

  async function answers(): Promise<boolean> {
    return sink.ping().then(
      () => true,
      () => false,
    );
  }

  function settleWaiters(seq: number): void {
    if (seq > committedSeq) committedSeq = seq;
    const still: Waiter[] = [];
    for (const w of waiters) (w.seq <= committedSeq ? w.resolve() : still.push(w));
    waiters = still;
  }

  function waitCommitted(seq: number, signal?: AbortSignal): Promise<void> {
    if (seq <= committedSeq) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        seq,
        resolve: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
        reject,
      };
      const onAbort = () => {
        waiters = waiters.filter((w) => w !== waiter);
        reject(signal?.reason instanceof Error ? signal.reason : new Error("aborted"));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      waiters.push(waiter);
      void requestFlush();
    });
  }

  /** A disk that filled up or failed takes seconds to fix, not a flush interval: back off from 1 s to 10 s. */
  function walRetryAfterMs(): number {
    return Math.min(10_000, 1000 * 2 ** Math.min(Math.max(walFailures - 1, 0), 4));
  }

  function retryAfterMs(): number {
    return reachable ? options.flushIntervalMs : Math.min(retryMaxMs, retryMinMs * 2 ** Math.min(failures, 16));
  }

  return {
    async accept(patches, durability, signal, logPayload) {
      if (closing) throw unavailable("the service is shutting down", 1000);
      let bytes = 0;
      for (const p of patches) bytes += p.bytes;
      const held = buffer.size + inflight.size;
      if (held + patches.length > options.maxRecords || bufferBytes + inflightBytes + bytes > options.maxBytes) {
        metrics.rejections.inc({ write_path: options.name });
        throw resourceExhausted(
          `write buffer full (${held} records, ${bufferBytes + inflightBytes} bytes held${reachable ? "" : "; database unreachable"})`,
          retryAfterMs(),
        );
      }
      const now = Date.now();
      for (const patch of patches) bufferPatch(patch, now);
      const seq = ++acceptedSeq;
      const logged = options.logWrites ? wal.append(logPayload ? logPayload() : serializePatches(patches), patches.length) : undefined;
      // An ACCEPTED write does not wait for the log, but a failed append must not go unnoticed.
      logged?.then(
        () => (walFailures = 0),
        (err: unknown) => {
          walFailures++;
          metrics.walFailures.inc({ write_path: options.name });
          logger.error({ err, write_path: options.name }, "write-ahead log append failed");
        },
      );
      if (buffer.size >= options.flushMaxRecords) void requestFlush();
      else scheduleAgeFlush();

      if (durability === "accepted") return "accepted";
      if (durability === "logged" && logged) {
        await logged.catch((err: unknown) => {
          throw unavailable(
            `the write-ahead log cannot be written (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); the write is buffered but not logged`,
            walRetryAfterMs(),
          );
        });
        return "logged";
      }
      await waitCommitted(seq, signal);
      return "committed";
    },

    async flush(timeoutMs) {
      const counts: FlushCounts = { written: {}, deadLettered: {} };
      if (buffer.size === 0 && inflight.size === 0) return { empty: true, counts };
      const stopCounting = onFlushed((committed, deadLettered) => {
        for (const patch of committed) counts.written[patch.table] = (counts.written[patch.table] ?? 0) + 1;
        for (const patch of deadLettered) counts.deadLettered[patch.table] = (counts.deadLettered[patch.table] ?? 0) + 1;
      });
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), timeoutMs);
      try {
        await waitCommitted(acceptedSeq, controller.signal);
      } catch {
        throw unavailable(
          `flush did not complete within ${timeoutMs} ms (${buffer.size + inflight.size} records waiting${reachable ? "" : "; database unreachable"})`,
          retryAfterMs(),
        );
      } finally {
        clearTimeout(timer);
        stopCounting();
      }
      return { empty: false, counts };
    },

    pending(table, key) {
      const id = patchId(table, key);
      const written = inflight.get(id);
      const buffered = buffer.get(id);
      if (!written) return buffered && clonePatch(buffered);
      const merged = clonePatch(written);
      if (buffered) mergeInto(merged, buffered);
      return merged;
    },

    pendingIn(group) {
      return group === undefined ? buffer.size + inflight.size : (groupCounts.get(group) ?? 0);
    },

    pendingByTable() {
      const counts: Record<string, number> = {};
      for (const rows of [buffer, inflight]) for (const patch of rows.values()) counts[patch.table] = (counts[patch.table] ?? 0) + 1;
      return counts;
    },

    onCommit,
    onFlushed,

    discard(group) {
      let dropped = 0;
      for (const [id, patch] of buffer) {
        if (options.groupOf?.(patch) !== group) continue;
        buffer.delete(id);
        bufferBytes -= patch.bytes;
        countGroup(patch, -1);
        dropped++;
      }
      return dropped;
    },

    restore(patches) {
      const now = Date.now();
      if (patches.length === 0) return;
      for (const patch of patches) bufferPatch(patch, now);
      // Replayed records count as accepted: Flush and COMMITTED writes wait for them like any other.
      acceptedSeq++;
      totals.walReplayed += patches.length;
      void requestFlush();
    },

    status() {
      return {
        name: options.name,
        bufferRecords: buffer.size + inflight.size,
        bufferBytes: bufferBytes + inflightBytes,
        oldestAgeMs: oldestAge(),
        lastFlushAt,
        flushes: totals.flushes,
        recordsWritten: totals.recordsWritten,
        statements: totals.statements,
        retries: totals.retries,
        deadLetters: totals.deadLetters,
        retryBacklog: reachable ? 0 : buffer.size + inflight.size,
        databaseReachable: reachable,
        walReplayed: totals.walReplayed,
        walPendingRecords: wal.stats().records,
      };
    },

    async close(timeoutMs) {
      closing = true;
      if (ageTimer) clearTimeout(ageTimer);
      ageTimer = undefined;
      const deadline = Date.now() + timeoutMs;
      const remaining = () => Math.max(0, deadline - Date.now());
      while ((buffer.size > 0 || inflight.size > 0) && remaining() > 0) {
        if (retryTimer) clearTimeout(retryTimer);
        retryTimer = undefined;
        const timeout = new AbortController();
        await Promise.race([requestFlush(), sleep(remaining(), timeout.signal)]);
        timeout.abort();
        if (!reachable) await sleep(Math.min(200, remaining()));
      }
      if (retryTimer) clearTimeout(retryTimer);
      retryTimer = undefined;
      const left = [...inflight.values(), ...buffer.values()];
      if (left.length > 0) {
        // Whatever is still unflushed waits in the log for the next start (it is there already when every write is logged).
        try {
          if (!options.logWrites) await wal.append(serializePatches(left), left.length);
          logger.warn({ write_path: options.name, records: left.length }, "stopped with unflushed records; they wait in the write-ahead log");
        } catch (err) {
          metrics.dataLoss.inc({ write_path: options.name }, left.length);
          logger.error({ err, write_path: options.name, records: left.length }, "unflushed records could not be logged at shutdown: lost");
        }
      }
      const gone = unavailable("the service stopped before the write was committed", 1000);
      for (const w of waiters) w.reject(gone);
      waiters = [];
      metrics.states.delete(options.name);
      await wal.close();
    },
  };
}

/** Resolves after `ms`, or at once when `signal` aborts (its timer then no longer holds the process open). */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Log frame payload: the patches of one accepted request. */
export function serializePatches(patches: readonly Patch[]): Buffer {
  return Buffer.from(
    JSON.stringify(patches.map((p) => ({ t: p.table, k: p.key, s: p.stamp, f: [...p.fields].map(([c, [v, s]]) => [c, v, s]) }))),
  );
}

/** Patches back from a log frame payload. */
export function deserializePatches(payload: Buffer): Patch[] {
  const records = JSON.parse(payload.toString()) as { t: string; k: string[]; s: number; f: [string, FieldValue, number][] }[];
  return records.map((r) => restorePatch(r.t, r.k, r.s, r.f));
}

/** The write-path metrics of one registry, shared by every write path registered there (each its own `write_path` label). */
interface SharedMetrics {
  readonly states: Map<string, () => { records: number; bytes: number; oldestAgeMs: number }>;
  readonly flushes: Counter;
  readonly records: Counter;
  readonly statements: Counter;
  readonly flushSeconds: Histogram;
  readonly rowsPerStatement: Histogram;
  readonly retries: Counter;
  readonly deadLetters: Counter;
  readonly rejections: Counter;
  readonly walFailures: Counter;
  readonly dataLoss: Counter;
}

const sharedMetrics = new WeakMap<Registry, SharedMetrics>();

function registryMetrics(registry: Registry): SharedMetrics {
  const existing = sharedMetrics.get(registry);
  if (existing) return existing;
  const registers = [registry];
  const states: SharedMetrics["states"] = new Map();
  const gauge = (name: string, help: string, read: (state: { records: number; bytes: number; oldestAgeMs: number }) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ["write_path"],
      registers,
      collect() {
        for (const [writePath, state] of states) this.set({ write_path: writePath }, read(state()));
      },
    });
  gauge("persistence_buffer_records", "Records accepted and not yet committed (buffered or being written).", (s) => s.records);
  gauge("persistence_buffer_bytes", "Approximate memory held by unflushed records.", (s) => s.bytes);
  gauge("persistence_buffer_oldest_age_seconds", "Age of the oldest unflushed record.", (s) => s.oldestAgeMs / 1000);
  const metrics: SharedMetrics = {
    states,
    flushes: new Counter({ name: "persistence_flushes_total", help: "Flush attempts by result.", labelNames: ["write_path", "result"], registers }),
    records: new Counter({ name: "persistence_flushed_records_total", help: "Records committed, per table.", labelNames: ["write_path", "table"], registers }),
    statements: new Counter({ name: "persistence_flush_statements_total", help: "SQL statements run by flushes.", labelNames: ["write_path"], registers }),
    flushSeconds: new Histogram({
      name: "persistence_flush_seconds",
      help: "Time to write one flush.",
      labelNames: ["write_path"],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    rowsPerStatement: new Histogram({
      name: "persistence_rows_per_statement",
      help: "Records per SQL statement in a flush.",
      labelNames: ["write_path"],
      buckets: [1, 10, 50, 100, 250, 500, 1000, 2000, 5000],
      registers,
    }),
    retries: new Counter({ name: "persistence_flush_retries_total", help: "Flushes retried because the database was unreachable.", labelNames: ["write_path"], registers }),
    deadLetters: new Counter({ name: "persistence_dead_letters_total", help: "Records the database refused, moved to dead letters.", labelNames: ["write_path", "table"], registers }),
    rejections: new Counter({ name: "persistence_buffer_full_total", help: "Writes refused with RESOURCE_EXHAUSTED because the buffer was full.", labelNames: ["write_path"], registers }),
    walFailures: new Counter({ name: "persistence_wal_append_failures_total", help: "Write-ahead log appends that failed (full or failing disk); their writers got UNAVAILABLE.", labelNames: ["write_path"], registers }),
    dataLoss: new Counter({ name: "persistence_data_loss_total", help: "Acknowledged records lost. Must stay 0.", labelNames: ["write_path"], registers }),
  };
  sharedMetrics.set(registry, metrics);
  return metrics;
}

function createMetrics(options: WriteBatcherOptions, state: () => { records: number; bytes: number; oldestAgeMs: number }): SharedMetrics {
  const metrics = registryMetrics(options.registry);
  const write_path = options.name;
  if (metrics.states.has(write_path)) throw new Error(`a write path named ${write_path} is already open`);
  metrics.states.set(write_path, state);
  // Every series an alert may watch exists from the start, at 0: `increase()` and `absent()` need a first sample.
  for (const result of ["ok", "retry"]) metrics.flushes.inc({ write_path, result }, 0);
  for (const counter of [metrics.statements, metrics.retries, metrics.rejections, metrics.walFailures, metrics.dataLoss]) counter.inc({ write_path }, 0);
  for (const table of options.tables) {
    metrics.records.inc({ write_path, table }, 0);
    metrics.deadLetters.inc({ write_path, table }, 0);
  }
  metrics.flushSeconds.zero({ write_path });
  metrics.rowsPerStatement.zero({ write_path });
  return metrics;
}
