import { rm } from "node:fs/promises";
import path from "node:path";
import type { SqlBackend } from "../backends/sql/sql-backend.js";
import { overflowDir, overflowFile, selectDeadLetters, type DeadLetterFilter, type DeadLetterTables } from "../platform/dead-letters.js";
import { table } from "./remote.js";

export type { DeadLetterFilter } from "../platform/dead-letters.js";

/** `dead-letters list`: the refused records, oldest first, with their reason. */
export async function listDeadLetters(sql: SqlBackend, filter: DeadLetterFilter, json: boolean): Promise<string> {
  const rows = await selectDeadLetters(sql.db, filter).selectAll().orderBy("id").limit(filter.limit ?? 100).execute();
  const total = Number((await selectDeadLetters(sql.db, filter).select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirst())?.n ?? 0);
  if (json) return JSON.stringify({ total, items: rows.map((r) => ({ ...r, id: Number(r.id), failed_at: new Date(Number(r.failed_at) / 1000).toISOString() })) }, null, 2);
  if (rows.length === 0) return "no dead letters";
  const lines = table([
    ["id", "write path", "table", "key", "failed at", "reason"],
    ...rows.map((r) => [String(r.id), r.write_path, r.table_name, r.record_key, new Date(Number(r.failed_at) / 1000).toISOString(), r.reason.replace(/\s+/g, " ").slice(0, 120)]),
  ]);
  if (total > rows.length) lines.push(`... ${total - rows.length} more (--limit)`);
  return lines.join("\n");
}

/**
 * `dead-letters purge`: deletes the chosen dead letters, and the files of those too large for one
 * statement (`<data dir>/dead-letters/<write path>/`). Returns how many it deleted.
 */
export async function purgeDeadLetters(sql: SqlBackend, dataDir: string, filter: DeadLetterFilter): Promise<number> {
  const rows = await selectDeadLetters(sql.db, filter).select(["id", "write_path", "payload"]).execute();
  for (const row of rows) {
    const file = overflowFile(row.payload);
    if (file) await rm(path.join(overflowDir(dataDir, row.write_path), file), { force: true });
  }
  let deleted = 0;
  for (let i = 0; i < rows.length; i += 500) {
    const ids = rows.slice(i, i + 500).map((r) => r.id);
    const result = await sql.db.withTables<DeadLetterTables>().deleteFrom("dead_letters").where("id", "in", ids).executeTakeFirst();
    deleted += Number(result.numDeletedRows);
  }
  return deleted;
}
