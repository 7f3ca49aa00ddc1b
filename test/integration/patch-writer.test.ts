import { sql } from "kysely";
import { createPatch, type Patch } from "../../server/core/patch";
import { createPatchWriter, splitByKeyRange } from "../../server/backends/sql/patch-writer";
import type { SqlBackend } from "../../server/backends/sql/sql-store";
import { openServiceSql } from "../../server/schema";
import { TRANSLATION_PATCH_TABLES } from "../../server/translation/translation.table";
import { describeEachDialect } from "../support/sql-targets";

const task = (session: number, n: number, stamp: number, status: string): Patch =>
  createPatch("translation_tasks", [`s-${session}`, `T${String(n).padStart(5, "0")}`], stamp, [
    ["status", status],
    ["row_index", n],
    ["created_at", stamp],
  ]);

describe("splitByKeyRange", () => {
  it("splits every table into contiguous, disjoint key ranges that cover it", () => {
    const patches = Array.from({ length: 10 }, (_, i) => task(i % 3, i, 1, "pending")).reverse();
    const parts = splitByKeyRange([{ table: "translation_tasks", patches }], 3);
    expect(parts).toHaveLength(3);
    const keys = parts.map((p) => p[0]!.patches.map((x) => x.key.join("/")));
    expect(keys.flat()).toEqual(patches.map((p) => p.key.join("/")).sort());
    expect(keys.map((k) => k.length)).toEqual([4, 4, 2]);
  });
});

describeEachDialect("patch writer", (target, dialect) => {
  let backend: SqlBackend;
  beforeAll(async () => {
    backend = await openServiceSql(target().url);
  });
  afterAll(async () => {
    await backend?.close();
  });

  const statuses = async () => {
    const { rows } = await sql<{ status: string; n: number | string }>`select status, count(*) as n from translation_tasks group by status order by status`.execute(backend.db);
    return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
  };

  it("stores values with quotes, backslashes, question marks and control characters exactly as given", async () => {
    const writer = await createPatchWriter(backend, TRANSLATION_PATCH_TABLES);
    const texts = [`it's a "test"? \\ back\\slash ? ??`, "tab\tnew\nline\r\u0000nul \u001a end", "emoji 🎮 and ja 日本語 ' -- ;", "?"];
    const key = `esc-${dialect}-${Date.now()}`;
    const patches = texts.map((text, i) =>
      createPatch("translation_tasks", [key, `T${i}`], 1000 + i, [
        ["source_text", text],
        ["confidence", 0.1 + i / 10],
        ["created_at", 1000],
      ]),
    );
    await writer.write([{ table: "translation_tasks", patches }]);
    const { rows } = await sql<{ task_id: string; source_text: string; confidence: number }>`
      select task_id, source_text, confidence from translation_tasks where session_id = ${key} order by task_id`.execute(backend.db);
    expect(rows.map((r) => [r.source_text, Number(r.confidence)])).toEqual(texts.map((t, i) => [t, 0.1 + i / 10]));
    await sql`delete from translation_tasks where session_id = ${key}`.execute(backend.db);
  });

  it("writes a backlog in parallel parts on MySQL (one transaction on SQLite), keeping per-column last-writer-wins", async () => {
    const writer = await createPatchWriter(backend, TRANSLATION_PATCH_TABLES);
    const first = Array.from({ length: 10_000 }, (_, i) => task(i % 7, i, 1000, "processing"));
    const statements = await writer.write([{ table: "translation_tasks", patches: first }]);
    // Statements hold at most 2,000 rows. MySQL: two parts of 5,000 rows, three statements each (one
    // transaction needs five: see below). SQLite: one transaction, five statements.
    expect(statements).toBe(dialect === "mysql" ? 6 : 5);
    if (dialect === "mysql") {
      const serial = await createPatchWriter(backend, TRANSLATION_PATCH_TABLES, { parallelism: 1 });
      expect(await serial.write([{ table: "translation_tasks", patches: first.map((p) => task(9, Number(p.key[1]!.slice(1)), 1000, "pending")) }])).toBe(5);
      await sql`delete from translation_tasks where session_id = 's-9'`.execute(backend.db);
    }
    expect(await statuses()).toEqual({ processing: 10_000 });

    // A second backlog: newer stamps for even rows, older ones for odd rows; only the newer apply.
    const second = first.map((p, i) => task(Number(p.key[0]!.slice(2)), i, i % 2 === 0 ? 2000 : 500, i % 2 === 0 ? "completed" : "failed"));
    await writer.write([{ table: "translation_tasks", patches: second }]);
    expect(await statuses()).toEqual({ completed: 5000, processing: 5000 });
  });
});
