import { sql, type Kysely, type Updateable } from "kysely";
import type { PreferencesRow, UserRow, UsersTables } from "./users.table.js";

/** The users domain's queries, one each; they take the domain's view of the SQL store. */
export type UsersDb = Kysely<UsersTables>;

export async function insertUser(db: UsersDb, row: UserRow): Promise<void> {
  await db.insertInto("users").values(row).execute();
}

export async function findUserById(db: UsersDb, userId: string): Promise<UserRow | undefined> {
  return db.selectFrom("users").selectAll().where("user_id", "=", userId).executeTakeFirst();
}

/** The user whose lower-cased username or email is `key`. */
export async function findUserByLogin(db: UsersDb, by: "username_key" | "email_key", key: string): Promise<UserRow | undefined> {
  return db.selectFrom("users").selectAll().where(by, "=", key).executeTakeFirst();
}

/** Which of the lower-cased username and email some other user than `exceptUserId` already holds. */
export async function takenBy(db: UsersDb, usernameKey: string | undefined, emailKey: string | undefined, exceptUserId = ""): Promise<{ username: boolean; email: boolean }> {
  if (usernameKey === undefined && emailKey === undefined) return { username: false, email: false };
  const rows = await db
    .selectFrom("users")
    .select(["username_key", "email_key"])
    .where((eb) => eb.or([...(usernameKey !== undefined ? [eb("username_key", "=", usernameKey)] : []), ...(emailKey !== undefined ? [eb("email_key", "=", emailKey)] : [])]))
    .where("user_id", "!=", exceptUserId)
    .execute();
  return { username: rows.some((r) => r.username_key === usernameKey), email: rows.some((r) => r.email_key === emailKey) };
}

/** Applies `changes`; false when there is no such user. */
export async function updateUser(db: UsersDb, userId: string, changes: Updateable<UserRow>): Promise<boolean> {
  const result = await db.updateTable("users").set(changes).where("user_id", "=", userId).executeTakeFirst();
  return Number(result.numUpdatedRows) > 0 || (await findUserById(db, userId)) !== undefined;
}

/** Removes the user and its preferences together; false when there was no such user. */
export async function deleteUser(db: UsersDb, userId: string): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    await trx.deleteFrom("user_preferences").where("user_id", "=", userId).execute();
    const result = await trx.deleteFrom("users").where("user_id", "=", userId).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  });
}

export async function findPreferences(db: UsersDb, userId: string): Promise<PreferencesRow | undefined> {
  return db.selectFrom("user_preferences").selectAll().where("user_id", "=", userId).executeTakeFirst();
}

export async function upsertPreferences(db: UsersDb, row: PreferencesRow, mysql: boolean): Promise<void> {
  const insert = db.insertInto("user_preferences").values(row);
  const { user_id: _key, ...changes } = row;
  await (mysql ? insert.onDuplicateKeyUpdate(changes) : insert.onConflict((oc) => oc.column("user_id").doUpdateSet(changes))).execute();
}

/**
 * Uses `amount` of a quota in one statement, so it holds across instances and connections: the row
 * changes only when the new count stays within the limit (and at or above 0). For the monthly
 * translations quota, a count of an earlier month starts again from 0. False when refused or unknown.
 */
export async function consumeQuota(db: UsersDb, userId: string, kind: "translations" | "storage_bytes", amount: number, period: number): Promise<boolean> {
  const result =
    kind === "translations"
      ? await sql`update users
          set translations_used = case when translations_period < ${period} then 0 else translations_used end + ${amount},
              translations_period = ${period}
          where user_id = ${userId}
            and case when translations_period < ${period} then 0 else translations_used end + ${amount} between 0 and translations_limit`.execute(db)
      : await sql`update users set storage_bytes_used = storage_bytes_used + ${amount}
          where user_id = ${userId} and storage_bytes_used + ${amount} between 0 and storage_bytes_limit`.execute(db);
  return Number(result.numAffectedRows ?? 0) > 0;
}

/** Gives back up to `amount` (> 0) of a quota: the count goes down, never below 0. */
export async function releaseQuota(db: UsersDb, userId: string, kind: "translations" | "storage_bytes", amount: number, period: number): Promise<void> {
  if (kind === "translations") {
    await sql`update users set translations_used = case when translations_period < ${period} or translations_used < ${amount} then 0 else translations_used - ${amount} end,
        translations_period = ${period} where user_id = ${userId}`.execute(db);
  } else {
    await sql`update users set storage_bytes_used = case when storage_bytes_used < ${amount} then 0 else storage_bytes_used - ${amount} end where user_id = ${userId}`.execute(db);
  }
}

/** Whether `err` is a unique-key violation (MySQL/MariaDB ER_DUP_ENTRY, SQLite SQLITE_CONSTRAINT_UNIQUE). */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: unknown; errno?: unknown };
  return e?.code === "ER_DUP_ENTRY" || e?.errno === 1062 || e?.code === "SQLITE_CONSTRAINT_UNIQUE" || e?.code === "SQLITE_CONSTRAINT_PRIMARYKEY";
}
