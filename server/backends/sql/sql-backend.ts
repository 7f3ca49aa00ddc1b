import { mkdirSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { Kysely, Migrator, MysqlDialect, sql, type Migration } from "kysely";
import { createPool, format } from "mysql2";
import { createConnection } from "mysql2/promise";
import { acquireLease, releaseLease } from "./leases.js";
import { createSqliteDialect } from "./sqlite-dialect.js";
import type { SqlBackend } from "./sql-store.js";
import { tableSizes } from "./table-sizes.js";
import { parseSqlUrl, type SqlTarget } from "./sql-url.js";

export type { SqlBackend, SqlDialect } from "./sql-store.js";

export interface SqlBackendOptions {
  /**
   * The schema, by migration name (a UTC timestamp first): the platform's and every module's, merged.
   * They run in name order; one that sorts before those already applied (a module added later) still runs.
   */
  readonly migrations: Readonly<Record<string, Migration>>;
  /** How long a health ping may take before the store counts as down, in ms (default 2000). */
  readonly pingTimeoutMs?: number;
}

/** Opens the store named by a `sqlite:` or `mysql://` URL (creating the database if missing) and migrates it. */
export async function openSqlBackend(url: string, options: SqlBackendOptions): Promise<SqlBackend> {
  const target = parseSqlUrl(url);
  const sqlite = target.dialect === "sqlite" ? openSqliteFile(target.file) : undefined;
  const db = sqlite ? new Kysely<unknown>({ dialect: createSqliteDialect(sqlite) }) : await openMysql(target as MysqlTarget);
  try {
    const migrator = createMigrator(db, options.migrations);
    if (sqlite) await migrateSqlite(sqlite, migrator);
    else await migrate(migrator);
  } catch (err) {
    await db.destroy();
    throw err;
  }
  const pingTimeoutMs = options.pingTimeoutMs ?? 2000;
  const pooled = () => sql`select 1`.execute(db).then(() => undefined);
  // A pooled connection can be one the server just dropped (after refusing a statement, say): before
  // calling the database down, ask once more over a connection of its own.
  const fresh = sqlite ? pooled : () => pingNewConnection(target as MysqlTarget);
  return {
    name: "sql",
    kind: target.dialect,
    dialect: target.dialect,
    db,
    ping: () => withTimeout(pooled().catch(fresh), pingTimeoutMs, "sql ping"),
    tableSizes: (tables) => tableSizes(db, target.dialect, tables),
    acquireLease: (name, holder, ttlMs) => acquireLease(db, name, holder, ttlMs),
    releaseLease: (name, holder) => releaseLease(db, name, holder),
    close: () => db.destroy(),
  };
}

type MysqlTarget = Extract<SqlTarget, { dialect: "mysql" }>;

const SQLITE_BUSY_TIMEOUT_MS = 5000;

function openSqliteFile(file: string): Database.Database {
  const memory = file === ":memory:";
  if (!memory) mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const database = new Database(memory ? ":memory:" : file);
  database.pragma("journal_mode = WAL");
  database.pragma("synchronous = NORMAL");
  database.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
  database.pragma("foreign_keys = ON");
  return database;
}

function connectionOptions(target: MysqlTarget) {
  return {
    host: target.host,
    port: target.port,
    user: target.user,
    password: target.password,
    charset: "utf8mb4",
    connectTimeout: 5000,
  };
}

async function pingNewConnection(target: MysqlTarget): Promise<void> {
  const conn = await createConnection({ ...connectionOptions(target), database: target.database });
  try {
    await conn.query("select 1");
  } finally {
    conn.destroy();
  }
}

async function openMysql(target: MysqlTarget): Promise<Kysely<unknown>> {
  const connection = connectionOptions(target);
  await ensureDatabase(connection, target.database);
  const pool = createPool({
    ...connection,
    database: target.database,
    connectionLimit: target.connectionLimit,
    // Exact numbers: DECIMAL sums as numbers, BIGINTs past 2^53 as strings rather than rounded.
    decimalNumbers: true,
    supportBigNumbers: true,
    timezone: "Z",
    enableKeepAlive: true,
    // mysql2 scans every statement for placeholders, even one sent with no values: the patch writer's
    // upserts come with their values in the text already (escaped once), and can be half a megabyte.
    queryFormat: (text: string, values: unknown) => (Array.isArray(values) && values.length === 0 ? text : format(text, values as never, false, "Z")),
  });
  return new Kysely<unknown>({ dialect: new MysqlDialect({ pool }) });
}

async function ensureDatabase(options: object, database: string): Promise<void> {
  const conn = await createConnection(options);
  try {
    await conn.query(`create database if not exists \`${database}\` character set utf8mb4 collate utf8mb4_bin`);
  } finally {
    conn.destroy();
  }
}

function createMigrator(db: Kysely<unknown>, migrations: Readonly<Record<string, Migration>>): Migrator {
  return new Migrator({
    db,
    provider: { getMigrations: async () => ({ ...migrations }) },
    migrationTableName: "schema_migrations",
    migrationLockTableName: "schema_migrations_lock",
    // Modules bring their own migrations: one added later may sort before those already applied.
    allowUnorderedMigrations: true,
  });
}

/** MySQL: Kysely serializes concurrent starts with GET_LOCK on the migration connection. */
async function migrate(migrator: Migrator): Promise<void> {
  const { error } = await migrator.migrateToLatest();
  if (error) throw error;
}

/**
 * SQLite: Kysely takes no lock there (it assumes one process per file), but several processes may
 * share the embedded file. The whole migration runs inside one BEGIN IMMEDIATE transaction on the
 * single connection: exclusive across processes, and all or nothing. Waiting for the write lock
 * would block this process's event loop, so a lost race backs off asynchronously and tries again.
 */
async function migrateSqlite(database: Database.Database, migrator: Migrator): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    database.pragma("busy_timeout = 0");
    try {
      database.exec("begin immediate");
    } catch (err) {
      if (!/locked|busy/i.test((err as Error).message) || attempt >= 100) throw err;
      await new Promise((r) => setTimeout(r, 10 + Math.random() * 10 * Math.min(attempt, 20)));
      continue;
    } finally {
      database.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
    }
    const { error } = await migrator.migrateToLatest();
    database.exec(error ? "rollback" : "commit");
    if (error) throw error;
    return;
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
