import { getOption, hasOption, ScalarType, type DescEnum, type DescField, type DescMessage, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import { FeatureSet_FieldPresence } from "@bufbuild/protobuf/wkt";
import { FieldBehavior, field_behavior } from "../../../gen/google/api/field_behavior_pb.js";
import { min_value, rest_name } from "../../../gen/persistence/v1/common_pb.js";
import type { FieldViolation } from "../../core/errors.js";

/**
 * The JSON of the REST paths, driven by the message descriptors: proto (snake_case) field names,
 * enum values by their short lowercase names (`"processing"` for `TASK_STATUS_PROCESSING`), 64-bit
 * integers as JSON numbers, times in RFC 3339 UTC, `Struct` fields as plain objects.
 *
 * Input is converted to canonical proto3 JSON (which `fromJson` then reads) and checked on the way:
 * every problem is reported with its field path (`tasks[3].status`), all of them at once. Input is
 * lenient where the original callers were: lowerCamel names, full enum names or numbers, times with
 * an offset, without a zone (UTC) or as a bare date. In a record that has `clear_fields` a JSON null
 * empties its field, as the original's upsert did (JSON Merge Patch); an omitted field keeps its value.
 */

export interface RestJsonOptions {
  /**
   * Drop JSON fields the message does not have instead of rejecting the request (default off). Not
   * query parameters: a field a newer client adds is data this service may skip, but a parameter is an
   * instruction (`dry_run`, `soft`, a filter), and dropping a misspelt one turns a dry run into a
   * deletion or a filtered read into a full one.
   */
  readonly ignoreUnknownFields: boolean;
}

const fieldIndex = new WeakMap<DescMessage, Map<string, DescField>>();

/** A field of `desc` by its proto name or its JSON (lowerCamel) name. */
export function findField(desc: DescMessage, key: string): DescField | undefined {
  let index = fieldIndex.get(desc);
  if (!index) {
    index = new Map();
    for (const f of desc.fields) {
      index.set(f.jsonName, f);
      index.set(f.name, f);
    }
    fieldIndex.set(desc, index);
  }
  return index.get(key);
}

/** The field a dotted path (`a.b.c`) names, through singular message fields; undefined when there is none. */
export function resolveFieldPath(desc: DescMessage, path: string): DescField | undefined {
  let current: DescMessage | undefined = desc;
  let field: DescField | undefined;
  for (const part of path.split(".")) {
    if (!current) return undefined;
    field = findField(current, part);
    if (!field) return undefined;
    current = field.fieldKind === "message" && !isWellKnown(field.message) ? field.message : undefined;
  }
  return field;
}

/** The short lowercase name of an enum value: `TASK_STATUS_PROCESSING` → `processing`. */
export function shortEnumName(desc: DescEnum, name: string): string {
  const lower = name.toLowerCase();
  const prefix = desc.sharedPrefix; // lower case, e.g. "task_status_"
  return prefix && lower.startsWith(prefix) ? lower.slice(prefix.length) : lower;
}

/** The short names a caller may send, without the zero `*_UNSPECIFIED` value. */
export function shortEnumNames(desc: DescEnum): string[] {
  return desc.values.filter((v) => v.number !== 0 || !v.name.endsWith("_UNSPECIFIED")).map((v) => shortEnumName(desc, v.name));
}

// --- input --------------------------------------------------------------------------------------

/** REST JSON → proto3 JSON for `desc`. Problems are appended to `out`; the result is only meaningful when none were. */
export function fromRestJson(desc: DescMessage, value: unknown, out: FieldViolation[], options: RestJsonOptions, path = ""): JsonValue {
  return messageIn(desc, value, path, out, options);
}

function messageIn(desc: DescMessage, value: unknown, path: string, out: FieldViolation[], options: RestJsonOptions): JsonValue {
  if (value === null) return null;
  switch (desc.typeName) {
    case "google.protobuf.Timestamp":
      if (typeof value === "string") {
        const time = normalizeTime(value);
        if (time !== undefined) return time;
      }
      return violation(out, path, "expected an RFC 3339 time such as 2025-09-30T10:00:00Z");
    case "google.protobuf.Duration":
      if (typeof value === "number" && Number.isFinite(value)) return `${value}s`;
      if (typeof value === "string" && /^-?\d+(\.\d{1,9})?s$/.test(value)) return value;
      return violation(out, path, 'expected a duration such as "1.5s"');
    case "google.protobuf.Struct":
      return isObject(value) ? (value as JsonObject) : violation(out, path, "expected an object");
    case "google.protobuf.ListValue":
      return Array.isArray(value) ? (value as JsonValue[]) : violation(out, path, "expected an array");
    case "google.protobuf.Value":
    case "google.protobuf.Any":
      return value as JsonValue;
    case "google.protobuf.FieldMask":
      return typeof value === "string" ? value : violation(out, path, "expected a comma-separated list of field paths");
    case "google.protobuf.Empty":
      return isObject(value) ? {} : violation(out, path, "expected an object");
  }
  const wrapped = wrappedField(desc);
  if (wrapped) return scalarIn(wrapped.scalar, value, path, out);
  if (!isObject(value)) return violation(out, path, "expected an object");
  const result: JsonObject = {};
  const clears = clearFieldsOf(desc);
  const cleared: string[] = [];
  for (const [key, item] of Object.entries(value)) {
    const field = findField(desc, key);
    const at = path === "" ? key : `${path}.${key}`;
    if (!field) {
      if (!options.ignoreUnknownFields) violation(out, at, "unknown field");
      continue;
    }
    if (item === null && clears && field !== clears && nullClears(field)) {
      cleared.push(field.name);
      continue;
    }
    result[field.name] = fieldIn(field, item, path === "" ? field.name : `${path}.${field.name}`, out, options);
  }
  if (clears && cleared.length > 0) {
    const listed = Array.isArray(result[clears.name]) ? (result[clears.name] as JsonValue[]) : [];
    result[clears.name] = [...new Set([...listed, ...cleared])];
  }
  return result;
}

/**
 * The `repeated string clear_fields` of a record message: the fields a patch empties. In such a
 * message a JSON null empties its field (JSON Merge Patch, RFC 7396) instead of meaning "not set".
 */
function clearFieldsOf(desc: DescMessage): DescField | undefined {
  const field = desc.fields.find((f) => f.name === "clear_fields");
  return field?.fieldKind === "list" && field.listKind === "scalar" && field.scalar === ScalarType.STRING ? field : undefined;
}

/**
 * Whether a null empties the field: only one that can be absent (an `optional` scalar, a message)
 * and that a caller may write. A null on a plain scalar or enum (a key, a status) keeps its proto3
 * meaning, "not set", and one on an output-only field is ignored like any value there.
 */
function nullClears(field: DescField): boolean {
  return field.presence === FeatureSet_FieldPresence.EXPLICIT && field.fieldKind !== "list" && field.fieldKind !== "map" && !hasBehavior(field, FieldBehavior.OUTPUT_ONLY);
}

const restNames = new WeakMap<DescMessage, void>();

/**
 * A field's key in REST JSON: its `(persistence.v1.rest_name)`, else its proto name. Throws (at the
 * first use, which start-up's OpenAPI build makes) when two fields of a message would share a key.
 */
export function restName(field: DescField): string {
  const desc = field.parent;
  if (!restNames.has(desc)) {
    const seen = new Set<string>();
    for (const f of desc.fields) {
      const name = hasOption(f, rest_name) ? getOption(f, rest_name) : f.name;
      if (seen.has(name)) throw new Error(`${desc.typeName}: two fields are named "${name}" in REST JSON`);
      seen.add(name);
    }
    restNames.set(desc);
  }
  return hasOption(field, rest_name) ? getOption(field, rest_name) : field.name;
}

/** The `(persistence.v1.min_value)` of a number field, if it has one. */
export function minValue(field: DescField): number | undefined {
  return hasOption(field, min_value) ? Number(getOption(field, min_value)) : undefined;
}

/** Whether a field carries a `google.api.field_behavior`. */
export function hasBehavior(field: DescField, behavior: FieldBehavior): boolean {
  return hasOption(field, field_behavior) && getOption(field, field_behavior).includes(behavior);
}

function fieldIn(field: DescField, value: unknown, path: string, out: FieldViolation[], options: RestJsonOptions): JsonValue {
  if (value === null) return null;
  switch (field.fieldKind) {
    case "scalar": {
      const scalar = scalarIn(field.scalar, value, path, out);
      const min = minValue(field);
      if (min !== undefined && typeof scalar === "number" && scalar < min) return violation(out, path, `must be ${min} or more`);
      return scalar;
    }
    case "enum":
      return enumIn(field.enum, value, path, out);
    case "message":
      return messageIn(field.message, value, path, out, options);
    case "list": {
      if (!Array.isArray(value)) return violation(out, path, "expected an array");
      return value.map((item: unknown, i) => {
        const at = `${path}[${i}]`;
        if (field.listKind === "scalar") return scalarIn(field.scalar, item, at, out);
        if (field.listKind === "enum") return enumIn(field.enum, item, at, out);
        return messageIn(field.message, item, at, out, options);
      });
    }
    case "map": {
      if (!isObject(value)) return violation(out, path, "expected an object");
      const result: JsonObject = {};
      for (const [key, item] of Object.entries(value)) {
        const at = `${path}[${JSON.stringify(key)}]`;
        if (field.mapKey !== ScalarType.STRING && field.mapKey !== ScalarType.BOOL && !/^-?\d+$/.test(key)) {
          violation(out, at, "map key must be an integer");
          continue;
        }
        if (field.mapKind === "scalar") result[key] = scalarIn(field.scalar, item, at, out);
        else if (field.mapKind === "enum") result[key] = enumIn(field.enum, item, at, out);
        else result[key] = messageIn(field.message, item, at, out, options);
      }
      return result;
    }
  }
}

const INT32 = { min: -(2 ** 31), max: 2 ** 31 - 1 };
const UINT32 = { min: 0, max: 2 ** 32 - 1 };
const INT64 = { min: -(2n ** 63n), max: 2n ** 63n - 1n };
const UINT64 = { min: 0n, max: 2n ** 64n - 1n };

function scalarIn(type: ScalarType, value: unknown, path: string, out: FieldViolation[]): JsonValue {
  switch (type) {
    case ScalarType.STRING:
      return typeof value === "string" ? value : violation(out, path, "expected a string");
    case ScalarType.BYTES:
      return typeof value === "string" && /^[A-Za-z0-9+/\-_]*={0,2}$/.test(value) ? value : violation(out, path, "expected base64 text");
    case ScalarType.BOOL:
      return typeof value === "boolean" ? value : violation(out, path, "expected true or false");
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT: {
      const n = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
      if (typeof n !== "number" || Number.isNaN(n)) return violation(out, path, "expected a number");
      const limit = type === ScalarType.FLOAT ? 3.4028234663852886e38 : Number.MAX_VALUE;
      if (!(Math.abs(n) <= limit)) return violation(out, path, "number out of range");
      return n;
    }
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
    case ScalarType.UINT32:
    case ScalarType.FIXED32: {
      const range = type === ScalarType.UINT32 || type === ScalarType.FIXED32 ? UINT32 : INT32;
      const n = typeof value === "string" && /^-?\d{1,12}$/.test(value) ? Number(value) : value;
      if (typeof n !== "number" || !Number.isInteger(n)) return violation(out, path, "expected an integer");
      if (n < range.min || n > range.max) return violation(out, path, `integer out of range ${range.min}..${range.max}`);
      return n;
    }
    default: {
      // 64-bit integers: numbers only while exact, decimal strings for the full range.
      const range = type === ScalarType.UINT64 || type === ScalarType.FIXED64 ? UINT64 : INT64;
      if (typeof value === "number") {
        if (!Number.isInteger(value)) return violation(out, path, "expected an integer");
        if (!Number.isSafeInteger(value)) return violation(out, path, "integer too large for a JSON number; send it as a string");
        if (BigInt(value) < range.min) return violation(out, path, `integer out of range ${range.min}..${range.max}`);
        return value;
      }
      if (typeof value !== "string" || !/^-?\d{1,20}$/.test(value)) return violation(out, path, "expected an integer");
      const n = BigInt(value);
      if (n < range.min || n > range.max) return violation(out, path, `integer out of range ${range.min}..${range.max}`);
      return value;
    }
  }
}

function enumIn(desc: DescEnum, value: unknown, path: string, out: FieldViolation[]): JsonValue {
  if (typeof value === "string") {
    const lower = value.toLowerCase();
    const match = desc.values.find((v) => v.name === value || shortEnumName(desc, v.name) === lower);
    if (match) return match.name;
  } else if (typeof value === "number" && desc.values.some((v) => v.number === value)) {
    return value;
  }
  return violation(out, path, `must be one of ${shortEnumNames(desc).join(", ")}`);
}

function violation(out: FieldViolation[], field: string, description: string): null {
  out.push({ field: field === "" ? "body" : field, description });
  return null;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const TIME =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?(Z|z|[+-]\d{2}:?\d{2})?$/;

/**
 * An RFC 3339 time (or a bare date, or a time without a zone, read as UTC) in the canonical form
 * `2025-09-30T10:00:00Z` (nanoseconds kept); undefined when it is not a valid time.
 */
export function normalizeTime(text: string): string | undefined {
  const m = TIME.exec(text.trim());
  if (!m) return undefined;
  const [year, month, day, hour = 0, minute = 0, second = 0] = m.slice(1, 7).map((s) => (s === undefined ? undefined : Number(s)));
  if (year === undefined || month === undefined || day === undefined) return undefined;
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, 0);
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) return undefined;
  const zone = m[8];
  if (zone && zone !== "Z" && zone !== "z") {
    const sign = zone.startsWith("-") ? -1 : 1;
    const digits = zone.slice(1).replace(":", "");
    const offsetMinutes = Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2));
    if (offsetMinutes > 23 * 60 + 59) return undefined;
    date.setTime(date.getTime() - sign * offsetMinutes * 60_000);
  }
  const y = date.getUTCFullYear();
  if (y < 1 || y > 9999) return undefined;
  const fraction = m[7] ? `.${m[7].padEnd(9, "0")}` : "";
  return `${date.toISOString().slice(0, 19)}${fraction}Z`;
}

// --- output -------------------------------------------------------------------------------------

/**
 * Proto3 JSON (with proto field names) of `desc` → REST JSON: short enum names, exact 64-bit integers
 * as numbers, and every field there, `null` when it is not set (the original returned every column,
 * and its callers index `item["target_text"]`), save input-only ones (`clear_fields`).
 */
export function toRestJson(desc: DescMessage, json: JsonValue): JsonValue {
  if (isWellKnown(desc)) {
    const wrapped = wrappedField(desc);
    return wrapped ? scalarOut(wrapped.scalar, json) : json;
  }
  if (!isObject(json)) return json;
  const result: JsonObject = {};
  for (const field of desc.fields) {
    if (hasBehavior(field, FieldBehavior.INPUT_ONLY)) continue;
    const value = json[field.name];
    result[restName(field)] = value === undefined || value === null ? null : fieldOut(field, value);
  }
  return result;
}

/** One field's proto3 JSON value → REST JSON (used for `response_body`). */
export function fieldToRestJson(field: DescField, value: JsonValue): JsonValue {
  return fieldOut(field, value);
}

function fieldOut(field: DescField, value: JsonValue): JsonValue {
  switch (field.fieldKind) {
    case "scalar":
      return scalarOut(field.scalar, value);
    case "enum":
      return typeof value === "string" ? shortEnumName(field.enum, value) : value;
    case "message":
      return toRestJson(field.message, value);
    case "list":
      if (!Array.isArray(value)) return value;
      if (field.listKind === "scalar") return value.map((v) => scalarOut(field.scalar, v));
      if (field.listKind === "enum") return value.map((v) => (typeof v === "string" ? shortEnumName(field.enum, v) : v));
      return value.map((v) => toRestJson(field.message, v));
    case "map": {
      if (!isObject(value)) return value;
      const result: JsonObject = {};
      for (const [k, v] of Object.entries(value)) {
        if (field.mapKind === "scalar") result[k] = scalarOut(field.scalar, v);
        else if (field.mapKind === "enum") result[k] = typeof v === "string" ? shortEnumName(field.enum, v) : v;
        else result[k] = toRestJson(field.message, v);
      }
      return result;
    }
  }
}

const INT64_TYPES = new Set([ScalarType.INT64, ScalarType.UINT64, ScalarType.SINT64, ScalarType.FIXED64, ScalarType.SFIXED64]);

function scalarOut(type: ScalarType, value: JsonValue): JsonValue {
  if (typeof value === "string" && INT64_TYPES.has(type)) {
    const n = Number(value);
    return Number.isSafeInteger(n) ? n : value;
  }
  return value;
}

// --- well-known types ---------------------------------------------------------------------------

export function isWellKnown(desc: DescMessage): boolean {
  return desc.typeName.startsWith("google.protobuf.");
}

/** The `value` field of a wrapper type (`google.protobuf.Int64Value`, ...). */
export function wrappedField(desc: DescMessage): (DescField & { fieldKind: "scalar" }) | undefined {
  if (!isWellKnown(desc) || !desc.typeName.endsWith("Value") || desc.typeName === "google.protobuf.Value") return undefined;
  const field = desc.fields[0];
  return desc.fields.length === 1 && field?.fieldKind === "scalar" ? field : undefined;
}
