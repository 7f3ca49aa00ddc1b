import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type { FieldValue } from "../core/patch.js";

/**
 * Field catalogs: every writable field of an entity, its proto name, its column, its rules, and what it
 * becomes when absent on a new row or cleared. A domain declares its entities with these; validation
 * (to-patches.ts), the write path (patch-table.ts) and the reads all follow that one catalog.
 */
export type FieldRule =
  | { readonly type: "string"; readonly maxChars?: number; readonly maxBytes?: number }
  | { readonly type: "int"; readonly min: number }
  | { readonly type: "double"; readonly min: number; readonly max?: number }
  | { readonly type: "status"; readonly names: Readonly<Record<number, string>> }
  | { readonly type: "json"; readonly maxBytes: number }
  | { readonly type: "time" };

export interface FieldSpec {
  /** snake_case proto field name, also the column name. */
  readonly name: string;
  /** The property of the generated message. */
  readonly prop: string;
  readonly rule: FieldRule;
  /** Value of a new row that does not set it; "stamp" means the record's ordering stamp. */
  readonly insertDefault: FieldValue | "stamp";
  /** Value `clear_fields` resets it to; undefined when it cannot be cleared. */
  readonly clearTo?: FieldValue;
}

export interface EntitySpec {
  readonly table: string;
  /** The request field holding the records ("sessions", "tasks"), for violation paths. */
  readonly listName: string;
  readonly keys: readonly { readonly name: string; readonly prop: string }[];
  readonly fields: readonly FieldSpec[];
  /** Fields the first write of an entity must set. */
  readonly requiredOnCreate: readonly string[];
}

/** Longest text in a text column: MySQL TEXT's 65,535 bytes of UTF-8. */
export const MAX_TEXT_BYTES = 65_535;
/** Longest serialized JSON object (game_info, metadata). */
export const MAX_JSON_BYTES = 65_535;
/** Keys: 1-64 characters of [A-Za-z0-9._:-]. */
export const KEY_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/;

/**
 * What is wrong with a key, or undefined when it is well formed. `.` and `..` are refused although
 * the pattern allows them: as URL path segments they are dot segments, which HTTP clients resolve away,
 * so such an entity could never be reached on its REST path.
 */
export function keyProblem(value: unknown): string | undefined {
  if (value === "." || value === "..") return "must not be . or .. (they cannot appear in a URL path)";
  if (typeof value === "string" && KEY_PATTERN.test(value)) return undefined;
  return value ? "must be 1-64 characters of A-Z a-z 0-9 . _ : -" : "is required";
}

/** Enum value → its lowercase name ("pending"), as the tables store statuses. */
export function statusNames(values: Record<string, string | number>): Record<number, string> {
  const names: Record<number, string> = {};
  for (const [name, value] of Object.entries(values)) {
    if (typeof value === "number" && value !== 0) names[value] = name.toLowerCase();
  }
  return names;
}

/** Field builders: a text of at most `maxChars` characters, a long text (TEXT), a count, a time, a JSON object, the creation time. */
export const text = (name: string, prop: string, maxChars: number, insertDefault: FieldValue = null): FieldSpec => ({
  name,
  prop,
  rule: { type: "string", maxChars },
  insertDefault,
  clearTo: insertDefault,
});
export const longText = (name: string, prop: string): FieldSpec => ({
  name,
  prop,
  rule: { type: "string", maxBytes: MAX_TEXT_BYTES },
  insertDefault: null,
  clearTo: null,
});
export const count = (name: string, prop: string, insertDefault: FieldValue = 0): FieldSpec => ({
  name,
  prop,
  rule: { type: "int", min: 0 },
  insertDefault,
  clearTo: insertDefault,
});
export const time = (name: string, prop: string): FieldSpec => ({ name, prop, rule: { type: "time" }, insertDefault: null, clearTo: null });
export const json = (name: string, prop: string): FieldSpec => ({
  name,
  prop,
  rule: { type: "json", maxBytes: MAX_JSON_BYTES },
  insertDefault: null,
  clearTo: null,
});
export const createdAt: FieldSpec = { name: "created_at", prop: "createdAt", rule: { type: "time" }, insertDefault: "stamp" };

/** Latest instant a stamp may name: 9999-12-31T23:59:59Z, as the SQL stores can hold (seconds since the epoch). */
export const MAX_TIME_SECONDS = 253_402_300_799;
const MAX_SECONDS = BigInt(MAX_TIME_SECONDS);

/** What is wrong with a time outside what a stamp may name. */
export const TIME_PROBLEM = "must be a valid time between 1970 and 9999";

/** Microseconds since the epoch of a Timestamp, or undefined when it is out of range. */
export function timestampMicros(ts: Timestamp): number | undefined {
  if (ts.seconds < 0n || ts.seconds > MAX_SECONDS || ts.nanos < 0 || ts.nanos > 999_999_999) return undefined;
  return Number(ts.seconds) * 1_000_000 + Math.floor(ts.nanos / 1000);
}
