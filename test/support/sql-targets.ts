import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { createConnection, type Connection } from "mysql2/promise";

export type Dialect = "sqlite" | "mysql";

/** Dialects to run; `TEST_DIALECTS=sqlite` narrows a local run. Both run by default (and in CI). */
export const DIALECTS: Dialect[] = (process.env.TEST_DIALECTS ?? "sqlite,mysql").split(",").map((d) => d.trim() as Dialect);

/** The shared MariaDB, reached as root without a password (`TEST_MYSQL_URL` overrides). */
export const MYSQL_SERVER = new URL(process.env.TEST_MYSQL_URL ?? "mysql://root@127.0.0.1:3306");

/** A database of its own for one suite: a temporary SQLite file, or a uniquely named MariaDB database. */
export interface SqlTarget {
  readonly dialect: Dialect;
  /** The `PERSISTENCE_SQL_URL` that reaches it. */
  readonly url: string;
  /** The MariaDB database name (mysql only). */
  readonly database?: string;
  /** Removes the database and its files. */
  drop(): Promise<void>;
}

export function createSqlTarget(dialect: Dialect, suite: string): SqlTarget {
  if (dialect === "sqlite") {
    const dir = mkdtempSync(path.join(os.tmpdir(), `persistence-${suite}-`));
    return {
      dialect,
      url: `sqlite:${path.join(dir, "test.db")}`,
      drop: async () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  const database = `pt_${suite.replace(/[^a-z0-9]/gi, "_")}_${randomBytes(4).toString("hex")}`.slice(0, 64);
  return {
    dialect,
    database,
    // The credentials of TEST_MYSQL_URL, still percent-encoded as the URL holds them.
    url: `mysql://${MYSQL_SERVER.username || "root"}${MYSQL_SERVER.password ? `:${MYSQL_SERVER.password}` : ""}@${MYSQL_SERVER.host}/${database}`,
    drop: async () => {
      await withMysql((conn) => conn.query(`drop database if exists \`${database}\``));
    },
  };
}

/** Runs `work` on a root connection to the shared MariaDB. */
export async function withMysql<T>(work: (conn: Connection) => Promise<T>): Promise<T> {
  const conn = await createConnection({
    host: MYSQL_SERVER.hostname,
    port: Number(MYSQL_SERVER.port || 3306),
    user: MYSQL_SERVER.username || "root",
    password: decodeURIComponent(MYSQL_SERVER.password),
  });
  try {
    return await work(conn);
  } finally {
    await conn.end();
  }
}

/**
 * Declares `body` once per dialect, like Kysely's own suites: each run gets a fresh database of its
 * own (so suites can run in parallel on the shared MariaDB), dropped afterwards.
 */
export function describeEachDialect(name: string, body: (target: () => SqlTarget, dialect: Dialect) => void): void {
  describe.each(DIALECTS)(`${name} [%s]`, (dialect) => {
    let target: SqlTarget | undefined;
    beforeAll(() => {
      target = createSqlTarget(dialect, name.split(" ")[0] ?? "suite");
    });
    afterAll(async () => {
      await target?.drop();
    });
    body(() => {
      if (!target) throw new Error("the SQL target exists only inside tests and hooks");
      return target;
    }, dialect);
  });
}
