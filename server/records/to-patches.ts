import type { JsonObject } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { invalidArgument, type FieldViolation } from "../core/errors.js";
import { addField, createPatch, type FieldValue, type Patch } from "../core/patch.js";
import { keyProblem, TIME_PROBLEM, timestampMicros, type EntitySpec, type FieldSpec } from "./fields.js";

/** A record message as it arrives (a generated type, read through its catalog). */
export type IncomingRecord = Record<string, unknown> & { clearFields: string[]; updatedAt?: Timestamp };

export interface ConvertedBatch {
  readonly patches: Patch[];
  readonly violations: FieldViolation[];
  /** Index of each patch that does not set every field required on an entity's first write, with those fields. */
  readonly lacking: Map<number, string[]>;
}

/**
 * Validates a batch of records and turns each into a patch, all or nothing: every violation of every
 * record is reported with its path (`tasks[3].confidence`). A record without `updated_at` is stamped
 * with `receivedAt` (µs).
 */
export function toPatches(
  spec: EntitySpec,
  records: readonly IncomingRecord[],
  receivedAt: number,
  maxRecords: number,
): ConvertedBatch {
  const violations: FieldViolation[] = [];
  const patches: Patch[] = [];
  const lacking = new Map<number, string[]>();
  if (records.length === 0 || records.length > maxRecords) {
    violations.push({ field: spec.listName, description: `must hold 1 to ${maxRecords} records, got ${records.length}` });
    return { patches, violations, lacking };
  }
  const lookup = fieldLookup(spec);
  records.forEach((record, index) => {
    const path = `${spec.listName}[${index}]`;
    const fail = (field: string, description: string) => void violations.push({ field: `${path}.${field}`, description });
    patches.push(recordPatch(spec, lookup, record, index, receivedAt, fail, lacking));
  });
  return { patches, violations, lacking };
}

/** One record message into a patch; its violations go to `fail`, the required fields it lacks to `lacking`. */
export function recordPatch(
  spec: EntitySpec,
  lookup: FieldLookup,
  record: IncomingRecord,
  index: number,
  receivedAt: number,
  fail: (field: string, description: string) => void,
  lacking: Map<number, string[]>,
): Patch {
  const key = spec.keys.map(({ name, prop }) => {
    const value = record[prop];
    const problem = keyProblem(value);
    if (problem) fail(name, problem);
    return String(value ?? "");
  });

  let stamp = receivedAt;
  if (record.updatedAt) {
    const micros = timestampMicros(record.updatedAt);
    if (micros === undefined) fail("updated_at", TIME_PROBLEM);
    else stamp = micros;
  }

  const entries: [string, FieldValue][] = [];
  for (const field of spec.fields) {
    const value = record[field.prop];
    if (!isSet(field, value)) continue;
    const converted = convert(field, value);
    if (typeof converted === "object" && converted !== null) fail(field.name, converted.problem);
    else entries.push([field.name, converted]);
  }
  const patch = createPatch(spec.table, key, stamp, entries);
  finishRecord(spec, lookup, patch, record.clearFields, index, fail, lacking);
  return patch;
}

/** An entity's fields by column name and by message property, for `clear_fields`. */
export interface FieldLookup {
  readonly byName: ReadonlyMap<string, FieldSpec>;
  readonly byProp: ReadonlyMap<string, FieldSpec>;
}

export function fieldLookup(spec: EntitySpec): FieldLookup {
  return { byName: new Map(spec.fields.map((f) => [f.name, f])), byProp: new Map(spec.fields.map((f) => [f.prop, f])) };
}

/**
 * The rest of a record once its keys, stamp and set fields are in `patch`: its `clear_fields` (each
 * reset to its empty value), and which fields required on a first write it leaves out (into `lacking`).
 * Shared by every decoder of records (this file's, for messages; wire-records.ts, for wire bytes).
 */
export function finishRecord(
  spec: EntitySpec,
  lookup: FieldLookup,
  patch: Patch,
  clearFields: readonly string[],
  index: number,
  fail: (field: string, description: string) => void,
  lacking: Map<number, string[]>,
): void {
  const cleared = new Set<string>();
  clearFields.forEach((raw, j) => {
    // The stamps cannot be emptied: the server sets them when they are absent, so listing one is
    // leaving it out (a REST caller that writes back a view with "updated_at": null lands here).
    if (raw === "updated_at" || raw === "updatedAt") return;
    const field = lookup.byName.get(raw) ?? lookup.byProp.get(raw);
    if (field?.insertDefault === "stamp") return;
    if (!field) return void fail(`clear_fields[${j}]`, `unknown field ${JSON.stringify(raw)}`);
    if (field.clearTo === undefined) return void fail(`clear_fields[${j}]`, `${field.name} cannot be cleared`);
    if (patch.fields.has(field.name)) return void fail(`clear_fields[${j}]`, `${field.name} is also set in this record`);
    if (!cleared.has(field.name)) addField(patch, field.name, field.clearTo);
    cleared.add(field.name);
  });
  if (spec.requiredOnCreate.length === 0) return;
  const missing = spec.requiredOnCreate.filter((name) => !patch.fields.has(name) || cleared.has(name));
  if (missing.length > 0) lacking.set(index, missing);
}

/** Throws INVALID_ARGUMENT naming `field` unless `value` is a well-formed key. */
export function requireKey(field: string, value: string): void {
  const problem = keyProblem(value);
  if (problem) throw invalidArgument([{ field, description: problem }]);
}

export function isSet(field: FieldSpec, value: unknown): boolean {
  if (value === undefined || value === null) return false;
  return field.rule.type !== "status" || value !== 0;
}

/** The column value of a set field, or what is wrong with it. */
export function convert(field: FieldSpec, value: unknown): FieldValue | { problem: string } {
  const rule = field.rule;
  switch (rule.type) {
    case "string": {
      const s = value as string;
      if (rule.maxChars !== undefined && s.length > rule.maxChars && [...s].length > rule.maxChars) {
        return { problem: `must be at most ${rule.maxChars} characters` };
      }
      if (rule.maxBytes !== undefined && s.length > rule.maxBytes / 3 && Buffer.byteLength(s) > rule.maxBytes) {
        return { problem: `must be at most ${rule.maxBytes} bytes of UTF-8` };
      }
      return s;
    }
    case "int": {
      const n = value as number;
      return n >= rule.min ? n : { problem: `must be >= ${rule.min}` };
    }
    case "double": {
      const n = value as number;
      if (!Number.isFinite(n) || n < rule.min || (rule.max !== undefined && n > rule.max)) {
        return { problem: rule.max === undefined ? `must be a finite number >= ${rule.min}` : `must be between ${rule.min} and ${rule.max}` };
      }
      return n;
    }
    case "status": {
      const name = rule.names[value as number];
      return name ?? { problem: `unknown status ${String(value)}` };
    }
    case "json": {
      const text = JSON.stringify(value as JsonObject);
      return Buffer.byteLength(text) <= rule.maxBytes ? text : { problem: `must be at most ${rule.maxBytes} bytes as JSON` };
    }
    case "time": {
      const micros = timestampMicros(value as Timestamp);
      return micros ?? { problem: TIME_PROBLEM };
    }
  }
}
