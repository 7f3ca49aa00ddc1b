import type { Kysely } from "kysely";

/** Driver error codes of a primary-key clash (mysql2, better-sqlite3). */
const DUPLICATE_KEY = new Set(["ER_DUP_ENTRY", "SQLITE_CONSTRAINT_PRIMARYKEY"]);

type LeaseTables = { leases: { name: string; holder: string; expires_at: number } };

/**
 * Takes (or renews) the lease `name` for `holder` for `ttlMs`, if nobody else holds an unexpired one.
 * Shared by every instance on the same database, so a scheduled job runs on one of them at a time.
 */
export async function acquireLease(db: Kysely<unknown>, name: string, holder: string, ttlMs: number): Promise<boolean> {
  const leases = db.withTables<LeaseTables>();
  const now = Date.now() * 1000;
  const expires = now + ttlMs * 1000;
  const taken = await leases
    .updateTable("leases")
    .set({ holder, expires_at: expires })
    .where("name", "=", name)
    .where((eb) => eb.or([eb("expires_at", "<", now), eb("holder", "=", holder)]))
    .executeTakeFirst();
  if (Number(taken.numUpdatedRows) > 0) return true;
  try {
    await leases.insertInto("leases").values({ name, holder, expires_at: expires }).execute();
    return true;
  } catch (err) {
    // The row appeared meanwhile: another instance holds the lease.
    if (DUPLICATE_KEY.has(String((err as { code?: unknown }).code))) return false;
    throw err;
  }
}

/** Ends the lease `name` if `holder` still holds it, so the next taker need not wait for it to expire. */
export async function releaseLease(db: Kysely<unknown>, name: string, holder: string): Promise<void> {
  await db.withTables<LeaseTables>().deleteFrom("leases").where("name", "=", name).where("holder", "=", holder).execute();
}
