import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { ConnectError } from "@connectrpc/connect";
import { sql, type Kysely } from "kysely";
import { failedPrecondition, unavailable } from "../../core/errors.js";
import type { Logger } from "../../core/logger.js";
import { acquireLease } from "../sql/leases.js";
import type { SqlBackend } from "../sql/sql-store.js";
import { isUnreachable } from "../sql/unreachable.js";
import type { ConsumeResult, KvStore, TakeResult } from "./kv-store.js";
import { createKvView, type KvOperations } from "./kv-view.js";

export interface SqlKvOptions {
  /** How often expired rows are deleted, by one instance at a time under a lease, in ms (default 60,000; 0: never). */
  readonly sweepIntervalMs?: number;
  /** This instance's name in the sweep lease (default host:pid:random). */
  readonly holder?: string;
  /** Where a failed sweep is reported (default: nowhere; the next one retries). */
  readonly logger?: Logger;
}

type Micros = number;
type KvTables = {
  // MySQL hands VARBINARY columns back as bytes.
  kv_entries: { k: string | Buffer; v: string; expires_at: Micros | null };
  kv_members: { k: string | Buffer; member: string | Buffer; expires_at: Micros | null };
};
type Db = Kysely<KvTables>;
type Entry = { readonly v: string; readonly expiresAt: Micros | null };

/** Keys per statement where a call names many. */
const KEYS_PER_STATEMENT = 500;
/** Rows a sweep deletes per statement, so no statement holds locks long. */
const SWEEP_BATCH = 1000;

/**
 * The embedded kv store: two tables of the SQL store (see the `kv` migration). Expired rows are
 * ignored on read and swept periodically. Atomic operations hold across instances sharing the
 * database: on SQLite each is one statement (SQLite runs one writer at a time, and no lock is held
 * between statements); on MySQL/MariaDB each is a short transaction that locks the key's row.
 * Closing the store stops the sweeps and leaves the SQL store open (it belongs to its opener).
 */
export function createSqlKvStore(store: SqlBackend, options: SqlKvOptions = {}): KvStore {
  const db = store.db.withTables<KvTables>();
  const mysql = store.dialect === "mysql";
  const kind = `sql-${store.dialect}`;
  const atomic = mysql ? mysqlAtomics(db) : sqliteAtomics(db);
  const run = <T>(work: () => Promise<T>) => call(kind, work);
  const now = () => Date.now() * 1000;
  const expiry = (ttlMs: number | undefined) => (ttlMs === undefined ? null : now() + ttlMs * 1000);

  const ops: KvOperations = {
    get: (key) =>
      run(async () => {
        const row = await db.selectFrom("kv_entries").select("v").where("k", "=", key).where(live(now())).executeTakeFirst();
        return row?.v;
      }),
    getMany: (keys) =>
      run(async () => {
        const found = new Map<string, string>();
        const at = now();
        for (const chunk of chunks(keys)) {
          const rows = await db.selectFrom("kv_entries").select(["k", "v"]).where("k", "in", chunk).where(live(at)).execute();
          for (const row of rows) found.set(text(row.k), row.v);
        }
        return keys.map((k) => found.get(k));
      }),
    set: (key, value, options) =>
      run(async () => {
        const insert = db.insertInto("kv_entries").values({ k: key, v: value, expires_at: expiry(options?.ttlMs) });
        await (mysql
          ? insert.onDuplicateKeyUpdate({ v: sql`values(v)`, expires_at: sql`values(expires_at)` })
          : insert.onConflict((oc) => oc.column("k").doUpdateSet({ v: (eb) => eb.ref("excluded.v"), expires_at: (eb) => eb.ref("excluded.expires_at") }))
        ).execute();
      }),
    setIfAbsent: (key, value, options) => run(() => atomic.setIfAbsent(key, value, expiry(options?.ttlMs))),
    expire: (key, ttlMs) =>
      run(async () => {
        const result = await db.updateTable("kv_entries").set({ expires_at: expiry(ttlMs) }).where("k", "=", key).where(live(now())).executeTakeFirst();
        return Number(result.numUpdatedRows) > 0;
      }),
    delete: (...keys) =>
      run(async () => {
        let count = 0;
        const at = now();
        for (const chunk of chunks(keys)) {
          const values = await db.deleteFrom("kv_entries").where("k", "in", chunk).where(live(at)).executeTakeFirst();
          const sets = await db.selectFrom("kv_members").select("k").distinct().where("k", "in", chunk).where(live(at)).execute();
          await db.deleteFrom("kv_members").where("k", "in", chunk).execute();
          count += Number(values.numDeletedRows) + sets.length;
        }
        return count;
      }),
    incrBy: (key, amount, options) => run(() => atomic.incrBy(key, amount, options?.ttlMs)),
    consume: (key, amount, limit, ttlMs) => run(() => atomic.consume(key, amount, limit, ttlMs)),
    take: (bucket, ratePerSecond, burst) => run(() => atomic.take(bucket, ratePerSecond, burst)),
    setAdd: (key, members, options) =>
      run(async () => {
        const expiresAt = expiry(options?.ttlMs);
        const insert = db.insertInto("kv_members").values(members.map((member) => ({ k: key, member, expires_at: expiresAt })));
        await (mysql
          ? insert.onDuplicateKeyUpdate({ expires_at: sql`values(expires_at)` })
          : insert.onConflict((oc) => oc.columns(["k", "member"]).doUpdateSet({ expires_at: (eb) => eb.ref("excluded.expires_at") }))
        ).execute();
      }),
    setRemove: (key, members) =>
      run(async () => {
        const result = await db
          .deleteFrom("kv_members")
          .where("k", "=", key)
          .where("member", "in", [...members])
          .where(live(now()))
          .executeTakeFirst();
        return Number(result.numDeletedRows);
      }),
    setMembers: (key) =>
      run(async () => {
        const rows = await db.selectFrom("kv_members").select("member").where("k", "=", key).where(live(now())).execute();
        return rows.map((r) => text(r.member));
      }),
  };

  const sweeps = scheduleSweeps(store, options);
  return createKvView(ops, {
    kind,
    ping: () => run(() => store.ping()),
    close: async () => sweeps?.stop(),
  });
}

/** Deletes every expired row (in batches); resolves to how many went. */
export async function sweepExpiredKv(store: SqlBackend, at: Micros = Date.now() * 1000): Promise<number> {
  let total = 0;
  for (const table of ["kv_entries", "kv_members"] as const) {
    for (;;) {
      // MySQL takes a LIMIT on DELETE; SQLite (as built here) does not, so it picks the rowids first.
      const statement =
        store.dialect === "mysql"
          ? sql`delete from ${sql.table(table)} where expires_at <= ${at} limit ${SWEEP_BATCH}`
          : sql`delete from ${sql.table(table)} where rowid in (select rowid from ${sql.table(table)} where expires_at <= ${at} limit ${SWEEP_BATCH})`;
      const deleted = Number((await statement.execute(store.db)).numAffectedRows ?? 0);
      total += deleted;
      if (deleted < SWEEP_BATCH) break;
    }
  }
  return total;
}

function scheduleSweeps(store: SqlBackend, options: SqlKvOptions): { stop(): void } | undefined {
  const intervalMs = options.sweepIntervalMs ?? 60_000;
  if (intervalMs <= 0) return undefined;
  const holder = options.holder ?? `${hostname()}:${process.pid}:${randomUUID()}`;
  const timer = setInterval(() => {
    void (async () => {
      if (!(await acquireLease(store.db, "kv-sweep", holder, intervalMs))) return;
      await sweepExpiredKv(store);
    })().catch((err: unknown) => options.logger?.warn({ err }, "kv sweep failed; the next one retries"));
  }, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

/** The atomic operations, per dialect. */
interface Atomics {
  setIfAbsent(key: string, value: string, expiresAt: Micros | null): Promise<boolean>;
  incrBy(key: string, amount: number, ttlMs: number | undefined): Promise<number>;
  consume(key: string, amount: number, limit: number, ttlMs: number | undefined): Promise<ConsumeResult>;
  take(bucket: string, ratePerSecond: number, burst: number): Promise<TakeResult>;
}

/** A token bucket's state as stored: tokens, when they were counted (ms), and whether the last take succeeded. */
type BucketState = { t: number; a: number; ok: 0 | 1 };

/** How long a bucket is kept: once it would be full again, a missing one means the same. */
const bucketTtlMs = (ratePerSecond: number, burst: number) => Math.ceil((burst / ratePerSecond) * 1000) + 1000;

const notACounter = () =>
  failedPrecondition("the kv key holds another kind of item", { type: "KV_ITEM_KIND", subject: "kv", description: "the value is not an integer counter" });
const notABucket = () =>
  failedPrecondition("the kv key holds another kind of item", { type: "KV_ITEM_KIND", subject: "kv", description: "the value is not a token bucket" });

/**
 * SQLite: one statement per operation (an upsert computing the new state from the old one and
 * returning it), so nothing is held between statements and several processes on one file stay exact.
 */
function sqliteAtomics(db: Db): Atomics {
  const now = () => Date.now() * 1000;
  const liveOld = (at: Micros) => sql`(kv_entries.expires_at is null or kv_entries.expires_at > ${at})`;
  const integerOld = sql`cast(cast(kv_entries.v as integer) as text) = kv_entries.v`;
  const counterUpdate = (at: Micros, amount: number) => sql`
    v = case when ${liveOld(at)} then cast(cast(kv_entries.v as integer) + cast(${amount} as integer) as text) else excluded.v end,
    expires_at = case when ${liveOld(at)} then coalesce(kv_entries.expires_at, excluded.expires_at) else excluded.expires_at end`;
  const window = (at: Micros, ttlMs: number | undefined) => (ttlMs === undefined ? null : at + ttlMs * 1000);
  const liveValue = async (key: string, at: Micros) =>
    (await db.selectFrom("kv_entries").select("v").where("k", "=", key).where(live(at)).executeTakeFirst())?.v;

  return {
    async setIfAbsent(key, value, expiresAt) {
      const at = now();
      const result = await sql`
        insert into kv_entries (k, v, expires_at) values (${key}, ${value}, ${expiresAt})
        on conflict (k) do update set v = excluded.v, expires_at = excluded.expires_at
        where not ${liveOld(at)}`.execute(db);
      return Number(result.numAffectedRows ?? 0) > 0;
    },
    async incrBy(key, amount, ttlMs) {
      const at = now();
      const { rows } = await sql<{ v: string }>`
        insert into kv_entries (k, v, expires_at) values (${key}, ${String(amount)}, ${window(at, ttlMs)})
        on conflict (k) do update set ${counterUpdate(at, amount)}
        where not ${liveOld(at)} or ${integerOld}
        returning v`.execute(db);
      if (rows[0] === undefined) throw notACounter();
      return Number(rows[0].v);
    },
    async consume(key, amount, limit, ttlMs) {
      const at = now();
      // INSERT ... SELECT inserts nothing when even a fresh window could not take the amount; the
      // upsert's WHERE refuses an amount that would pass the limit.
      const { rows } = await sql<{ v: string }>`
        insert into kv_entries (k, v, expires_at) select ${key}, ${String(amount)}, ${window(at, ttlMs)} where ${amount} <= ${limit}
        on conflict (k) do update set ${counterUpdate(at, amount)}
        where (not ${liveOld(at)} or ${integerOld})
          and (case when ${liveOld(at)} then cast(kv_entries.v as integer) else 0 end) + ${amount} <= ${limit}
        returning v`.execute(db);
      if (rows[0] !== undefined) return { allowed: true, remaining: Math.max(0, limit - Number(rows[0].v)) };
      const used = await liveValue(key, at);
      if (used !== undefined && !/^-?\d+$/.test(used)) throw notACounter();
      return { allowed: false, remaining: Math.max(0, limit - Number(used ?? 0)) };
    },
    async take(bucket, ratePerSecond, burst) {
      const atMs = Date.now();
      const at = atMs * 1000;
      const tokensOld = sql`case when ${liveOld(at)} then json_extract(kv_entries.v, '$.t') else ${burst} end`;
      const countedOld = sql`case when ${liveOld(at)} then json_extract(kv_entries.v, '$.a') else ${atMs} end`;
      const refilled = sql`min(${burst}, ${tokensOld} + max(0, ${atMs} - ${countedOld}) / 1000.0 * ${ratePerSecond})`;
      const expiresAt = at + bucketTtlMs(ratePerSecond, burst) * 1000;
      let rows: { v: string }[];
      try {
        ({ rows } = await sql<{ v: string }>`
          insert into kv_entries (k, v, expires_at) values (${bucket}, json_object('t', ${burst} - 1.0, 'a', ${atMs}, 'ok', 1), ${expiresAt})
          on conflict (k) do update set
            v = json_object('t', case when ${refilled} >= 1 then ${refilled} - 1 else ${refilled} end, 'a', ${atMs}, 'ok', ${refilled} >= 1),
            expires_at = excluded.expires_at
          returning v`.execute(db));
      } catch (err) {
        if (/malformed JSON/i.test((err as Error).message)) throw notABucket();
        throw err;
      }
      return bucketOutcome(JSON.parse(rows[0]?.v ?? "null") as BucketState | null, ratePerSecond);
    },
  };
}

/**
 * MySQL/MariaDB: a READ COMMITTED transaction per operation. Its first statement makes sure the row
 * exists and locks it (an upsert that changes nothing on an existing row, an expired placeholder on a
 * new one), so concurrent callers on any instance queue on that row lock; the new state is then
 * computed here and written before COMMIT. Deadlocks, should InnoDB see one, are retried.
 */
function mysqlAtomics(db: Db): Atomics {
  async function locked<T>(key: string, decide: (entry: Entry | undefined, at: Micros) => { write?: Entry; result: T }): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await db
          .transaction()
          .setIsolationLevel("read committed")
          .execute(async (trx) => {
            await sql`insert into kv_entries (k, v, expires_at) values (${key}, '', 0) on duplicate key update k = k`.execute(trx);
            const row = await trx.selectFrom("kv_entries").select(["v", "expires_at"]).where("k", "=", key).forUpdate().executeTakeFirst();
            // Read after the lock is granted: the wait for it does not eat into the TTLs.
            const at = Date.now() * 1000;
            const entry = row && isLive(row.expires_at, at) ? { v: row.v, expiresAt: row.expires_at === null ? null : Number(row.expires_at) } : undefined;
            const { write, result } = decide(entry, at);
            if (write) await trx.updateTable("kv_entries").set({ v: write.v, expires_at: write.expiresAt }).where("k", "=", key).execute();
            else if (!entry) await trx.deleteFrom("kv_entries").where("k", "=", key).execute();
            return result;
          });
      } catch (err) {
        if (attempt < 5 && (err as { code?: unknown }).code === "ER_LOCK_DEADLOCK") continue;
        throw err;
      }
    }
  }
  const counter = (entry: Entry | undefined) => {
    if (entry === undefined) return 0;
    if (!/^-?\d+$/.test(entry.v)) throw notACounter();
    return Number(entry.v);
  };
  const windowFor = (entry: Entry | undefined, at: Micros, ttlMs: number | undefined) =>
    entry?.expiresAt ?? (ttlMs === undefined ? null : at + ttlMs * 1000);

  return {
    setIfAbsent: (key, value, expiresAt) =>
      locked(key, (entry) => (entry ? { result: false } : { write: { v: value, expiresAt }, result: true })),
    incrBy: (key, amount, ttlMs) =>
      locked(key, (entry, at) => {
        const count = counter(entry) + amount;
        return { write: { v: String(count), expiresAt: windowFor(entry, at, ttlMs) }, result: count };
      }),
    consume: (key, amount, limit, ttlMs) =>
      locked<ConsumeResult>(key, (entry, at) => {
        const used = counter(entry);
        if (used + amount > limit) return { result: { allowed: false, remaining: Math.max(0, limit - used) } };
        return { write: { v: String(used + amount), expiresAt: windowFor(entry, at, ttlMs) }, result: { allowed: true, remaining: limit - used - amount } };
      }),
    take: (bucket, ratePerSecond, burst) =>
      locked(bucket, (entry, at) => {
        const atMs = Math.floor(at / 1000);
        const old = entry ? parseBucket(entry.v) : { t: burst, a: atMs };
        const refilled = Math.min(burst, old.t + (Math.max(0, atMs - old.a) / 1000) * ratePerSecond);
        const state: BucketState = refilled >= 1 ? { t: refilled - 1, a: atMs, ok: 1 } : { t: refilled, a: atMs, ok: 0 };
        const write = { v: JSON.stringify(state), expiresAt: at + bucketTtlMs(ratePerSecond, burst) * 1000 };
        return { write, result: bucketOutcome(state, ratePerSecond) };
      }),
  };
}

function parseBucket(v: string): { t: number; a: number } {
  try {
    const state = JSON.parse(v) as Partial<BucketState>;
    if (typeof state.t === "number" && typeof state.a === "number") return { t: state.t, a: state.a };
  } catch {
    // not JSON: not a bucket either
  }
  throw notABucket();
}

function bucketOutcome(state: BucketState | null, ratePerSecond: number): TakeResult {
  if (typeof state?.t !== "number") throw notABucket();
  return state.ok === 1 ? { allowed: true, retryAfterMs: 0 } : { allowed: false, retryAfterMs: Math.max(1, Math.ceil(((1 - state.t) / ratePerSecond) * 1000)) };
}

/** Rows that have not expired at `at`. */
function live(at: Micros) {
  return sql<boolean>`(expires_at is null or expires_at > ${at})`;
}

function isLive(expiresAt: Micros | null, at: Micros): boolean {
  return expiresAt === null || Number(expiresAt) > at;
}

/** MySQL hands VARBINARY back as bytes. */
function text(value: string | Buffer): string {
  return typeof value === "string" ? value : value.toString("utf8");
}

function* chunks<T>(items: readonly T[]): Generator<T[]> {
  for (let i = 0; i < items.length; i += KEYS_PER_STATEMENT) yield items.slice(i, i + KEYS_PER_STATEMENT);
}

/** Besides an unreachable database: it is too busy to serve now (a lock not granted in time, a busy file). */
const BUSY = new Set(["ER_LOCK_WAIT_TIMEOUT", "ER_LOCK_DEADLOCK", "SQLITE_BUSY", "SQLITE_LOCKED"]);

async function call<T>(kind: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof ConnectError) throw err;
    const e = err as { code?: unknown; fatal?: unknown; message?: unknown };
    if (isUnreachable(err) || BUSY.has(String(e.code)) || e.fatal === true || /pool is closed|driver has already been destroyed/i.test(String(e.message))) {
      throw unavailable(`kv store (${kind}) unreachable: ${String(e.message)}`, 1000);
    }
    throw err;
  }
}
