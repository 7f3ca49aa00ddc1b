import { readFile } from "node:fs/promises";
import path from "node:path";
import type { Kysely } from "kysely";
import type { DeadLetterRow as StoredDeadLetter } from "../backends/sql/patch-writer.js";
import { restorePatch, type FieldValue, type Patch } from "../core/patch.js";

/** A row of `dead_letters`: a record the database refused, as its write path's patch writer stored it. */
export interface DeadLetterRow extends StoredDeadLetter {
  id: number;
}

export type DeadLetterTables = { dead_letters: DeadLetterRow };

/** Which dead letters a command is about: some ids, one write path, one table; all of them when none is given. */
export interface DeadLetterFilter {
  readonly ids?: readonly number[] | undefined;
  readonly writePath?: string | undefined;
  readonly table?: string | undefined;
  readonly limit?: number | undefined;
}

/** The dead letters `filter` chooses (without its limit), for the caller to select from, count or delete. */
export function selectDeadLetters(db: Kysely<unknown>, filter: DeadLetterFilter) {
  let q = db.withTables<DeadLetterTables>().selectFrom("dead_letters");
  if (filter.ids && filter.ids.length > 0) q = q.where("id", "in", [...filter.ids]);
  if (filter.writePath) q = q.where("write_path", "=", filter.writePath);
  if (filter.table) q = q.where("table_name", "=", filter.table);
  return q;
}

/** Where a write path keeps the whole records of dead letters too large for one statement. */
export function overflowDir(dataDir: string, writePath: string): string {
  return path.join(dataDir, "dead-letters", writePath);
}

/** The file a cut-down payload (`{truncated: true, ..., file}`) names, if it is one. */
export function overflowFile(payload: string): string | undefined {
  try {
    const parsed = JSON.parse(payload) as { truncated?: unknown; file?: unknown };
    return parsed.truncated === true && typeof parsed.file === "string" ? path.basename(parsed.file) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The patch a dead letter holds, every field with the stamp it had (so a retry cannot overwrite a newer
 * value), read from its overflow file when the row holds only a cut-down payload. A string says why
 * it cannot be read back.
 */
export async function deadLetterPatch(row: DeadLetterRow, dataDir: string): Promise<Patch | string> {
  let key: unknown;
  let fields: unknown;
  try {
    key = JSON.parse(row.record_key);
    fields = JSON.parse(row.payload);
  } catch {
    return "its key or payload is not JSON";
  }
  if ((fields as { truncated?: unknown }).truncated === true) {
    const file = overflowFile(row.payload);
    if (!file) return "its payload was cut to fit a statement and no file keeps the whole record";
    try {
      const whole = JSON.parse(await readFile(path.join(overflowDir(dataDir, row.write_path), file), "utf8")) as { key?: unknown; fields?: unknown };
      key = whole.key;
      fields = whole.fields;
    } catch (err) {
      return `its overflow file ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
    }
  }
  if (!Array.isArray(key) || !key.every((k) => typeof k === "string")) return "its key is not a list of strings";
  if (typeof fields !== "object" || fields === null || Array.isArray(fields)) return "its payload is not an object of fields";
  const entries: [string, FieldValue, number][] = [];
  for (const [column, entry] of Object.entries(fields)) {
    const valid = Array.isArray(entry) && entry.length === 2 && (entry[0] === null || ["string", "number"].includes(typeof entry[0])) && Number.isFinite(entry[1]);
    if (!valid) return `its field ${column} is not a [value, stamp] pair`;
    entries.push([column, entry[0] as FieldValue, entry[1] as number]);
  }
  const stamp = entries.reduce((newest, [, , s]) => Math.max(newest, s), 0);
  return restorePatch(row.table_name, key as string[], stamp, entries);
}
