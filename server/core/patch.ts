/**
 * A patch: the fields one write sets, each with the ordering stamp of the record that set it.
 * Patches of one key merge field by field, newest stamp wins (ties: the later arrival), which is
 * commutative and associative: any instance, any order, any replay converges to the same state.
 * The database applies them the same way (see backends/sql/patch-writer.ts).
 */

/** A column value as the SQL drivers take it. */
export type FieldValue = string | number | null;

export interface Patch {
  /** Which table the patch is for, e.g. "translation_tasks". */
  readonly table: string;
  /** The primary key values, in the table's key column order. */
  readonly key: readonly string[];
  /** Column → [value, stamp in µs since the epoch]. */
  readonly fields: Map<string, readonly [FieldValue, number]>;
  /** The newest stamp among the fields (or of the record, when it set none). */
  stamp: number;
  /** Rough memory held, for the buffer's byte budget. */
  bytes: number;
}

/** Overhead per patch and per field in the byte estimate: object headers, map entries, key strings. */
const PATCH_OVERHEAD = 200;
const FIELD_OVERHEAD = 48;

export function createPatch(table: string, key: readonly string[], stamp: number, fields: Iterable<[string, FieldValue]>): Patch {
  const map = new Map<string, readonly [FieldValue, number]>();
  let bytes = PATCH_OVERHEAD + key.reduce((n, k) => n + k.length, 0);
  for (const [column, value] of fields) {
    map.set(column, [value, stamp]);
    bytes += FIELD_OVERHEAD + valueBytes(value);
  }
  return { table, key, fields: map, stamp, bytes };
}

/** Sets one more field of a new patch, stamped with the patch's stamp. */
export function addField(patch: Patch, column: string, value: FieldValue): void {
  patch.fields.set(column, [value, patch.stamp]);
  patch.bytes += FIELD_OVERHEAD + valueBytes(value);
}

/** A patch whose fields carry stamps of their own (read back from the write-ahead log). */
export function restorePatch(
  table: string,
  key: readonly string[],
  stamp: number,
  fields: Iterable<readonly [string, FieldValue, number]>,
): Patch {
  const patch = createPatch(table, key, stamp, []);
  for (const [column, value, fieldStamp] of fields) {
    patch.fields.set(column, [value, fieldStamp]);
    patch.bytes += FIELD_OVERHEAD + valueBytes(value);
  }
  return patch;
}

/** Identity of a patch's row: table and key joined by a separator no key may contain. */
export function patchId(table: string, key: readonly string[]): string {
  return `${table}\u0000${key.join("\u0000")}`;
}

/** Folds `incoming` into `target` field by field (newest stamp wins, ties go to `incoming`). */
export function mergeInto(target: Patch, incoming: Patch): void {
  for (const [column, entry] of incoming.fields) {
    const current = target.fields.get(column);
    if (current === undefined) {
      target.fields.set(column, entry);
      target.bytes += FIELD_OVERHEAD + valueBytes(entry[0]);
    } else if (entry[1] >= current[1]) {
      target.fields.set(column, entry);
      target.bytes += valueBytes(entry[0]) - valueBytes(current[0]);
    }
  }
  if (incoming.stamp > target.stamp) target.stamp = incoming.stamp;
}

/** A copy that later merges into the original do not change. */
export function clonePatch(patch: Patch): Patch {
  return { ...patch, fields: new Map(patch.fields) };
}

function valueBytes(value: FieldValue): number {
  return typeof value === "string" ? value.length * 2 : 8;
}

/**
 * How a write path's rows reach their table:
 * - `lww`: per-column last-writer-wins upserts; each field column has a `<column>_stamp` companion and
 *   the row an `updated_at` (the newest stamp applied);
 * - `append`: insert-only, idempotent by key (a row already there is left as it is), no stamp
 *   columns, rows inserted in the order they were accepted, in one transaction at a time.
 */
export type WriteMode = "lww" | "append";

/** How patches of one table map onto its columns. */
export interface PatchTable {
  readonly name: string;
  readonly keyColumns: readonly string[];
  /** Columns a patch may set; in `lww` mode each has a `<column>_stamp` companion holding the stamp of its value. */
  readonly fieldColumns: readonly string[];
  /** Field columns a new row must be given even when no patch sets them (NOT NULL without a usable default). */
  readonly insertRequired: readonly string[];
  /** The value a new row gets for a column its first patch does not set. */
  insertDefault(column: string, patch: Patch): FieldValue;
}

/** Groups of patches on their way to the tables. */
export type PatchGroups = readonly { table: string; patches: readonly Patch[] }[];
