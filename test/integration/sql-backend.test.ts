import net from "node:net";
import { sql } from "kysely";
import type { SqlBackend } from "../../server/backends/sql/sql-store";
import { parseSqlUrl } from "../../server/backends/sql/sql-url";
import { openServiceSql, SCHEMA } from "../../server/schema";
import type { EntitySpec } from "../../server/records/fields";
import { SESSION, TASK } from "../../server/translation/translation.fields";
import { createSqlTarget, describeEachDialect, withMysql } from "../support/sql-targets";

/** Index name → columns, as the database itself reports them. */
async function indexes(backend: SqlBackend, table: string): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  if (backend.dialect === "mysql") {
    const { rows } = await sql<{ Key_name: string; Column_name: string }>`show index from ${sql.table(table)}`.execute(backend.db);
    for (const row of rows) (out[row.Key_name] ??= []).push(row.Column_name);
  } else {
    const { rows } = await sql<{ name: string }>`select name from pragma_index_list(${table})`.execute(backend.db);
    for (const { name } of rows) {
      const cols = await sql<{ name: string }>`select name from pragma_index_info(${name}) order by seqno`.execute(backend.db);
      out[name] = cols.rows.map((c) => c.name);
    }
  }
  return out;
}


/** A table's columns as the catalog that drives writes names them: keys, fields, and the row's `updated_at`. */
const columnsOf = (spec: EntitySpec) => [...spec.keys.map((k) => k.name), ...spec.fields.map((f) => f.name), "updated_at"];
const SESSION_COLUMNS = columnsOf(SESSION);
const TASK_COLUMNS = columnsOf(TASK);

describeEachDialect("sql-backend", (target, dialect) => {
  let backend: SqlBackend;
  let MIGRATIONS: string[];
  beforeAll(async () => {
    backend = await openServiceSql(target().url);
    MIGRATIONS = Object.keys(SCHEMA).sort();
    expect(MIGRATIONS[0]).toBe("2026_11_29_000000_translation_tables");
  });
  afterAll(async () => {
    await backend?.close();
  });

  it("creates the translation tables with every field as a column, each written field with its ordering stamp", async () => {
    const tables = await backend.db.introspection.getTables();
    const columns = (name: string) => tables.find((t) => t.name === name)?.columns.map((c) => c.name).sort();
    const withStamps = (cols: string[], keys: string[]) =>
      [...cols, ...cols.filter((c) => !keys.includes(c) && c !== "updated_at").map((c) => `${c}_stamp`)].sort();
    expect(columns("translation_sessions")).toEqual([...withStamps(SESSION_COLUMNS, ["session_id"]), "deleted_at"].sort());
    expect(columns("translation_tasks")).toEqual(withStamps(TASK_COLUMNS, ["session_id", "task_id"]));
    expect(columns("dead_letters")).toEqual(["failed_at", "id", "payload", "reason", "record_key", "table_name", "write_path"]);
    expect(columns("translation_tombstones")).toEqual(["deleted_at", "session_id"]);
  });

  it("indexes the keys and filters the translation queries use", async () => {
    const sessions = Object.values(await indexes(backend, "translation_sessions"));
    expect(sessions).toEqual(
      expect.arrayContaining([
        ["session_id"],
        ["status", "deleted_at", "created_at"],
        ["status", "deleted_at", "updated_at"],
        ["llm_provider", "created_at"],
        ["created_at"],
        ["updated_at"],
      ]),
    );
    const tasks = Object.values(await indexes(backend, "translation_tasks"));
    expect(tasks).toEqual(
      expect.arrayContaining([
        ["session_id", "task_id"],
        ["session_id", "status"],
        ["session_id", "sheet_name", "row_index", "column_name"],
        ["task_id"],
        ["batch_id"],
        ["status"],
        ["created_at"],
        ["updated_at"],
      ]),
    );
  });

  it("stores texts up to 65,535 bytes and keys that differ only in case", async () => {
    const db = backend.db.withTables<{ translation_tasks: Record<string, unknown> }>();
    const text = "翻".repeat(21845); // 65,535 bytes of UTF-8
    const row = { sheet_name: "Dialogue", row_index: 1, column_name: "Text", source_text: text, created_at: 1, updated_at: 1 };
    await db.insertInto("translation_tasks").values([{ ...row, session_id: "s", task_id: "t" }, { ...row, session_id: "s", task_id: "T" }]).execute();
    const stored = await db.selectFrom("translation_tasks").select(["task_id", "source_text"]).where("session_id", "=", "s").execute();
    expect(stored.map((r) => r.task_id).sort()).toEqual(["T", "t"]);
    expect(stored[0]?.source_text).toBe(text);
  });

  it("opens an already migrated store without changing it", async () => {
    const again = await openServiceSql(target().url);
    try {
      const { rows } = await sql<{ name: string }>`select name from schema_migrations`.execute(again.db);
      expect(rows.map((r) => r.name)).toEqual(MIGRATIONS);
    } finally {
      await again.close();
    }
  });

  it("lets several instances start on a fresh store at once", async () => {
    const fresh = createSqlTarget(dialect, "concurrent");
    try {
      const opened = await Promise.all([1, 2, 3, 4].map(() => openServiceSql(fresh.url)));
      try {
        const { rows } = await sql<{ name: string }>`select name from schema_migrations order by name`.execute(opened[0]!.db);
        expect(rows.map((r) => r.name)).toEqual(MIGRATIONS);
      } finally {
        await Promise.all(opened.map((b) => b.close()));
      }
    } finally {
      await fresh.drop();
    }
  });

  it("gives a lease to one holder at a time until it expires", async () => {
    expect(await backend.acquireLease("job", "a", 1500)).toBe(true);
    expect(await backend.acquireLease("job", "b", 1500)).toBe(false);
    expect(await backend.acquireLease("job", "a", 1500)).toBe(true);
    await new Promise((r) => setTimeout(r, 1600));
    expect(await backend.acquireLease("job", "b", 1500)).toBe(true);
    expect(await backend.acquireLease("job", "a", 1500)).toBe(false);
  });

  it("frees a lease its holder releases, and only its holder's", async () => {
    expect(await backend.acquireLease("released", "a", 60_000)).toBe(true);
    await backend.releaseLease("released", "b");
    expect(await backend.acquireLease("released", "b", 60_000)).toBe(false);
    await backend.releaseLease("released", "a");
    expect(await backend.acquireLease("released", "b", 60_000)).toBe(true);
  });

  it("answers pings while reachable", async () => {
    await expect(backend.ping()).resolves.toBeUndefined();
  });
});

describe("sql-backend on MariaDB", () => {
  it("creates the database when it does not exist yet", async () => {
    const fresh = createSqlTarget("mysql", "create");
    try {
      const backend = await openServiceSql(fresh.url);
      await backend.close();
      const [rows] = await withMysql((conn) =>
        conn.query("select default_character_set_name as cs from information_schema.schemata where schema_name = ?", [fresh.database]),
      );
      expect(rows).toEqual([{ cs: "utf8mb4" }]);
    } finally {
      await fresh.drop();
    }
  });

  it("fails to open, without hanging, when nothing listens at the address", async () => {
    const closedPort = await new Promise<number>((resolve) => {
      const probe = net.createServer().listen(0, "127.0.0.1", () => {
        const { port } = probe.address() as net.AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    await expect(openServiceSql(`mysql://root@127.0.0.1:${closedPort}/never`)).rejects.toThrow(/ECONNREFUSED/);
  });
});

describe("SQL URLs", () => {
  it("parses sqlite and mysql URLs, credentials and pool size included", () => {
    expect(parseSqlUrl("sqlite:/tmp/x.db")).toEqual({ dialect: "sqlite", file: "/tmp/x.db" });
    expect(parseSqlUrl("sqlite::memory:")).toEqual({ dialect: "sqlite", file: ":memory:" });
    expect(parseSqlUrl("mysql://app:p%40ss@db:3307/persist?connection_limit=16")).toEqual({
      dialect: "mysql", host: "db", port: 3307, user: "app", password: "p@ss", database: "persist", connectionLimit: 16,
    });
    expect(parseSqlUrl("mysql://127.0.0.1/x")).toMatchObject({ port: 3306, user: "root", password: "", connectionLimit: 8 });
  });

  it("rejects other schemes and unsafe database names", () => {
    expect(() => parseSqlUrl("postgres://h/db")).toThrow(/unsupported/);
    expect(() => parseSqlUrl("mysql://h/bad`name")).toThrow(/invalid database name/);
  });
});
