import type { DescMessage, MessageInitShape } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import type { Durability } from "./gen/persistence/v1/common_pb.js";
import { SessionSchema, TaskSchema, type FlushResponse } from "./gen/persistence/v1/translation_pb.js";
import type { PersistenceClient } from "./client.js";
import { PersistenceError } from "./errors.js";
import { backoffMs } from "./retry.js";

export type SessionRecord = MessageInitShape<typeof SessionSchema>;
export type TaskRecord = MessageInitShape<typeof TaskSchema>;
export type RecordKind = "sessions" | "tasks";

export interface TranslationBatcherOptions {
  /** Records per request (default 100). A kind is sent as soon as it has this many pending. */
  readonly maxBatchRecords?: number | undefined;
  /** Longest a record waits before it is sent, in ms (default 200). */
  readonly flushIntervalMs?: number | undefined;
  /**
   * Most distinct records held, pending and in flight (default 50000). Updates of a record already
   * held never count; `persist*` refuses new records beyond this (returns false) instead of blocking.
   */
  readonly maxHeldRecords?: number | undefined;
  /** Requests in flight per kind (default 4). */
  readonly maxInFlight?: number | undefined;
  /** Durability asked of the service (default: the service's, LOGGED). */
  readonly durability?: Durability | undefined;
  /** Backoff between failed sends of a kind: first delay and cap, in ms (defaults 200 and 10000). */
  readonly retry?: { readonly initialDelayMs?: number | undefined; readonly maxDelayMs?: number | undefined } | undefined;
  /** Told about every failed send and every refused or dropped record. Never throws into the caller. */
  readonly onError?: ((event: BatchErrorEvent) => void) | undefined;
}

export interface BatchErrorEvent {
  readonly error: PersistenceError;
  readonly kind: RecordKind;
  /** How many records the event is about. */
  readonly records: number;
  /** True: the records are kept and sent again after a backoff. False: they were dropped (or refused). */
  readonly willRetry: boolean;
}

export interface BatcherStats {
  /** Records held now, waiting or in flight. */
  readonly held: number;
  readonly inFlightRequests: number;
  /** Records handed to persist* (before coalescing). */
  readonly persisted: number;
  /** Records the service acknowledged. */
  readonly sent: number;
  readonly requests: number;
  readonly failedRequests: number;
  /** Records dropped: rejected by the service as invalid, or refused because the batcher was full or closed. */
  readonly dropped: number;
}

export interface TranslationBatcher {
  /** Queues a session record (a patch: only the fields set are written). False when it was refused. */
  persistSession(session: SessionRecord): boolean;
  /** Queues task records. All or none: false when the batcher cannot hold them. */
  persistTasks(tasks: readonly TaskRecord[]): boolean;
  /**
   * Sends everything persisted so far, waits until the service has acknowledged it, then calls `Flush`
   * so it is committed and visible to every instance. Rejects after `timeoutMs` (default 30000), keeping
   * whatever is still unsent.
   */
  flushAll(options?: { readonly timeoutMs?: number | undefined }): Promise<FlushResponse>;
  stats(): BatcherStats;
  /**
   * Refuses new records, runs `flushAll`, then stops. Records it could not send within the timeout
   * are reported through `onError` (willRetry false) and the returned promise rejects.
   */
  close(options?: { readonly timeoutMs?: number | undefined }): Promise<void>;
}

/** A record waiting to be sent, with the sequence number of the oldest persist it carries. */
interface Entry {
  record: Record<string, unknown>;
  firstSeq: number;
}

interface Lane {
  readonly kind: RecordKind;
  readonly schema: DescMessage;
  readonly keyOf: (record: Record<string, unknown>) => string;
  readonly pending: Map<string, Entry>;
  inFlight: number;
  inFlightRecords: number;
  /** Oldest persist sequence number in each request in flight. */
  readonly inFlightSeqs: Set<number>;
  /**
   * Keys in flight: a newer update of such a key waits until the request carrying the older one is
   * answered, so one key is never in two requests at once (a session's first write, which carries its
   * required fields, always arrives first, and a failed request merges back under the newer update).
   */
  readonly inFlightKeys: Set<string>;
  /** A partial batch may go: the oldest pending record has waited the interval. */
  due: boolean;
  dueTimer: NodeJS.Timeout | undefined;
  /** No sends before this time (backoff after a failure). */
  retryAt: number;
  retryTimer: NodeJS.Timeout | undefined;
  failures: number;
}

/**
 * The translation backend's write pattern made cheap: `persistSession` and `persistTasks` return at
 * once; records are coalesced per key (ten updates of one task become one record) and sent in
 * batches, by size or after a short interval. Every record is stamped (`updated_at`) when it is
 * persisted, with a clock that never goes back, so retries and batches that overtake each other can
 * never make older state win on the service. When the service cannot be reached the batcher keeps
 * the records (bounded), backs off and retries; `onError` hears about it.
 */
export function createTranslationBatcher(client: PersistenceClient, options: TranslationBatcherOptions = {}): TranslationBatcher {
  const maxBatch = options.maxBatchRecords ?? 100;
  const intervalMs = options.flushIntervalMs ?? 200;
  const maxHeld = options.maxHeldRecords ?? 50_000;
  const maxInFlight = options.maxInFlight ?? 4;
  const retry = { initialDelayMs: options.retry?.initialDelayMs ?? 200, maxDelayMs: options.retry?.maxDelayMs ?? 10_000 };
  const lanes: Record<RecordKind, Lane> = {
    sessions: lane("sessions", SessionSchema, (r) => String(r.sessionId ?? "")),
    tasks: lane("tasks", TaskSchema, (r) => `${String(r.sessionId ?? "")}\u0000${String(r.taskId ?? "")}`),
  };
  let seq = 0;
  let lastStampUs = 0;
  /** No new records (close() was called). */
  let closed = false;
  /** No more sends (close() has finished; whatever could not be sent was reported). */
  let stopped = false;
  const counters = { persisted: 0, sent: 0, requests: 0, failedRequests: 0, dropped: 0 };
  const waiters = new Set<{ upTo: number; resolve: () => void }>();

  const held = () => lanes.sessions.pending.size + lanes.sessions.inFlightRecords + lanes.tasks.pending.size + lanes.tasks.inFlightRecords;

  const report = (event: BatchErrorEvent) => {
    try {
      options.onError?.(event);
    } catch {
      // a failing hook must not break the batcher
    }
  };

  /** A stamp in microseconds, strictly increasing within this process. */
  const stamp = () => {
    lastStampUs = Math.max(Date.now() * 1000, lastStampUs + 1);
    return { seconds: BigInt(Math.floor(lastStampUs / 1e6)), nanos: (lastStampUs % 1e6) * 1000 };
  };

  const persist = (target: Lane, records: readonly Record<string, unknown>[]): boolean => {
    if (closed) {
      counters.dropped += records.length;
      report({ error: new PersistenceError("the batcher is closed", Code.FailedPrecondition), kind: target.kind, records: records.length, willRetry: false });
      return false;
    }
    const fresh = new Set(records.map(target.keyOf).filter((k) => !target.pending.has(k)));
    if (held() + fresh.size > maxHeld) {
      counters.dropped += records.length;
      report({
        error: new PersistenceError(`the batcher holds ${held()} records, its limit is ${maxHeld}`, Code.ResourceExhausted),
        kind: target.kind,
        records: records.length,
        willRetry: false,
      });
      return false;
    }
    counters.persisted += records.length;
    for (const record of records) {
      const stamped = record.updatedAt === undefined ? { ...record, updatedAt: stamp() } : { ...record };
      const key = target.keyOf(stamped);
      const entry = target.pending.get(key);
      seq++;
      if (entry) entry.record = merge(target.schema, entry.record, stamped);
      else target.pending.set(key, { record: stamped, firstSeq: seq });
    }
    if (target.pending.size > 0 && !target.due && !target.dueTimer) {
      target.dueTimer = setTimeout(() => {
        target.dueTimer = undefined;
        target.due = true;
        pump(target);
      }, intervalMs);
      target.dueTimer.unref?.();
    }
    pump(target);
    return true;
  };

  const pump = (target: Lane) => {
    if (stopped) return;
    while (target.inFlight < maxInFlight && target.pending.size > 0 && (target.due || target.pending.size >= maxBatch)) {
      if (Date.now() < target.retryAt) {
        if (!target.retryTimer) {
          target.retryTimer = setTimeout(() => {
            target.retryTimer = undefined;
            pump(target);
          }, target.retryAt - Date.now());
          target.retryTimer.unref?.();
        }
        return;
      }
      const batch: Entry[] = [];
      for (const [key, entry] of target.pending) {
        if (target.inFlightKeys.has(key)) continue;
        batch.push(entry);
        target.pending.delete(key);
        target.inFlightKeys.add(key);
        if (batch.length === maxBatch) break;
      }
      if (batch.length === 0) return; // everything pending waits for a request in flight
      if (target.pending.size === 0) {
        target.due = false;
        clearTimeout(target.dueTimer);
        target.dueTimer = undefined;
      }
      void send(target, batch);
    }
  };

  const send = async (target: Lane, batch: Entry[]) => {
    const firstSeq = Math.min(...batch.map((e) => e.firstSeq));
    target.inFlight++;
    target.inFlightRecords += batch.length;
    target.inFlightSeqs.add(firstSeq);
    counters.requests++;
    const records = batch.map((e) => e.record);
    try {
      const durability = options.durability === undefined ? {} : { durability: options.durability };
      if (target.kind === "sessions") {
        await client.translation.batchUpsertSessions({ sessions: records as SessionRecord[], ...durability });
      } else {
        await client.translation.batchUpsertTasks({ tasks: records as TaskRecord[], ...durability });
      }
      counters.sent += batch.length;
      target.failures = 0;
    } catch (reason) {
      counters.failedRequests++;
      failed(target, batch, PersistenceError.from(reason));
    } finally {
      for (const entry of batch) target.inFlightKeys.delete(target.keyOf(entry.record));
      target.inFlight--;
      target.inFlightRecords -= batch.length;
      target.inFlightSeqs.delete(firstSeq);
      pump(target);
      settleWaiters();
    }
  };

  const failed = (target: Lane, batch: Entry[], error: PersistenceError) => {
    if (stopped) {
      counters.dropped += batch.length;
      report({ error, kind: target.kind, records: batch.length, willRetry: false });
      return;
    }
    if (error.code === Code.InvalidArgument) {
      // The service names each bad record (`tasks[3].status`): drop those, send the rest again.
      const bad = new Set(error.fieldViolations.map((v) => /^\w+\[(\d+)\]/.exec(v.field)?.[1]).filter((i) => i !== undefined).map(Number));
      const keep = bad.size > 0 ? batch.filter((_, i) => !bad.has(i)) : [];
      counters.dropped += batch.length - keep.length;
      report({ error, kind: target.kind, records: batch.length - keep.length, willRetry: false });
      requeue(target, keep);
      target.due = target.due || keep.length > 0;
      return;
    }
    if (!RETRYABLE.has(error.code)) {
      counters.dropped += batch.length;
      report({ error, kind: target.kind, records: batch.length, willRetry: false });
      return;
    }
    target.failures++;
    target.retryAt = Math.max(target.retryAt, Date.now() + backoffMs(target.failures, error.retryDelayMs, retry));
    requeue(target, batch);
    target.due = true;
    report({ error, kind: target.kind, records: batch.length, willRetry: true });
  };

  /** Puts records back under any newer pending update of the same key. */
  const requeue = (target: Lane, batch: Entry[]) => {
    for (const entry of batch) {
      const key = target.keyOf(entry.record);
      const newer = target.pending.get(key);
      if (newer) {
        newer.record = merge(target.schema, entry.record, newer.record);
        newer.firstSeq = Math.min(newer.firstSeq, entry.firstSeq);
      } else {
        target.pending.set(key, entry);
      }
    }
  };

  /** Oldest persist sequence number not yet acknowledged, or Infinity. */
  const oldestUnsent = () => {
    let oldest = Infinity;
    for (const target of Object.values(lanes)) {
      for (const s of target.inFlightSeqs) oldest = Math.min(oldest, s);
      for (const entry of target.pending.values()) oldest = Math.min(oldest, entry.firstSeq);
    }
    return oldest;
  };

  const settleWaiters = () => {
    if (waiters.size === 0) return;
    const oldest = oldestUnsent();
    for (const waiter of waiters) {
      if (oldest > waiter.upTo) {
        waiters.delete(waiter);
        waiter.resolve();
      }
    }
  };

  const flushAll = async (flushOptions: { readonly timeoutMs?: number | undefined } = {}): Promise<FlushResponse> => {
    const timeoutMs = flushOptions.timeoutMs ?? 30_000;
    const upTo = seq;
    let timer: NodeJS.Timeout | undefined;
    const waiter = { upTo, resolve: () => {} };
    try {
      await new Promise<void>((resolve, reject) => {
        waiter.resolve = resolve;
        timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new PersistenceError(`flushAll: ${held()} records still unsent after ${timeoutMs} ms; they are kept`, Code.DeadlineExceeded));
        }, timeoutMs);
        waiters.add(waiter);
        for (const target of Object.values(lanes)) {
          if (target.pending.size > 0) target.due = true;
          pump(target);
        }
        settleWaiters();
      });
    } finally {
      clearTimeout(timer);
    }
    return client.translation.flush({}, { timeoutMs: Math.max(1000, timeoutMs) });
  };

  return {
    persistSession: (session) => persist(lanes.sessions, [session as Record<string, unknown>]),
    persistTasks: (tasks) => persist(lanes.tasks, tasks as readonly Record<string, unknown>[]),
    flushAll,
    stats: () => ({
      held: held(),
      inFlightRequests: lanes.sessions.inFlight + lanes.tasks.inFlight,
      ...counters,
    }),
    async close(closeOptions) {
      if (closed) return;
      closed = true;
      try {
        await flushAll(closeOptions);
      } finally {
        stopped = true;
        for (const target of Object.values(lanes)) {
          clearTimeout(target.dueTimer);
          clearTimeout(target.retryTimer);
          if (target.pending.size > 0) {
            const error = new PersistenceError(`closed with ${target.pending.size} ${target.kind} records unsent`, Code.Unavailable);
            counters.dropped += target.pending.size;
            report({ error, kind: target.kind, records: target.pending.size, willRetry: false });
          }
        }
      }
    },
  };
}

/** Codes after which a batch is kept and sent again. */
const RETRYABLE = new Set([Code.Unavailable, Code.ResourceExhausted, Code.DeadlineExceeded, Code.Aborted, Code.Internal, Code.Unknown, Code.Canceled]);

function lane(kind: RecordKind, schema: DescMessage, keyOf: (record: Record<string, unknown>) => string): Lane {
  return {
    kind,
    schema,
    keyOf,
    pending: new Map(),
    inFlight: 0,
    inFlightRecords: 0,
    inFlightSeqs: new Set(),
    inFlightKeys: new Set(),
    due: false,
    dueTimer: undefined,
    retryAt: 0,
    retryTimer: undefined,
    failures: 0,
  };
}

/** A record's `updated_at` in microseconds (0 when absent). */
function stampOf(record: Record<string, unknown>): number {
  const t = record.updatedAt as { seconds?: bigint | number; nanos?: number } | undefined;
  return t ? Number(t.seconds ?? 0) * 1e6 + Math.floor((t.nanos ?? 0) / 1000) : 0;
}

/**
 * Two patches of one record → one: fields set by the newer (by `updated_at`) win, fields only `older` set stay, and
 * `clear_fields` follow (a field set after it was cleared is no longer cleared, and the reverse).
 */
export function merge(schema: DescMessage, first: Record<string, unknown>, second: Record<string, unknown>): Record<string, unknown> {
  // The newer is the one with the later stamp (the second one on a tie).
  const [older, newer] = stampOf(first) > stampOf(second) ? [second, first] : [first, second];
  const merged: Record<string, unknown> = { ...older };
  const cleared = new Set<string>((older.clearFields as string[] | undefined) ?? []);
  for (const [key, value] of Object.entries(newer)) {
    if (key === "clearFields" || value === undefined) continue;
    merged[key] = value;
    const field = schema.fields.find((f) => f.localName === key);
    if (field) cleared.delete(field.name);
  }
  for (const name of (newer.clearFields as string[] | undefined) ?? []) {
    cleared.add(name);
    const field = schema.fields.find((f) => f.name === name);
    if (field) delete merged[field.localName];
  }
  if (cleared.size > 0) merged.clearFields = [...cleared];
  else delete merged.clearFields;
  return merged;
}
