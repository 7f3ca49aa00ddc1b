import { Code, ConnectError } from "@connectrpc/connect";
import { fromBinary, ScalarType, type DescField, type DescMessage } from "@bufbuild/protobuf";
import type { FieldViolation } from "../core/errors.js";
import { addField, createPatch, type FieldValue, type Patch } from "../core/patch.js";
import { keyProblem, TIME_PROBLEM, type EntitySpec, type FieldSpec } from "./fields.js";
import { WireCursor, NOT_FAST } from "./wire-cursor.js";
import { convert, fieldLookup, finishRecord, isSet, recordPatch, type ConvertedBatch } from "./to-patches.js";

/**
 * Records straight from their protobuf wire bytes to patches, driven by the entity's field catalog:
 * no generated message is built per record and converted again. Validation, violation paths and
 * messages are those of to-patches.ts (they share its code); undecodable bytes are refused as Connect
 * refuses them ("parse binary: ...", INTERNAL). A record with a field this decoder leaves to
 * protobuf-es (a JSON object, an output-only field) is decoded by protobuf-es, that record alone.
 *
 * The same bytes make the write-ahead log's frame (see logFrame): replay decodes them again.
 */
export interface WireRecords {
  /** The entity's table: names its frames in the log. */
  readonly table: string;
  /** Validates and converts a batch, all or nothing, as toPatches does; records without `updated_at` get `receivedAt` (µs). */
  decode(records: readonly Uint8Array[], receivedAt: number, maxRecords: number): ConvertedBatch;
  /** The log frame payload holding `records` as received. */
  logFrame(records: readonly Uint8Array[], receivedAt: number): Buffer;
}

/** What a wire field of a record is to the decoder. */
type Slot =
  | { readonly kind: "key"; readonly index: number }
  | { readonly kind: "updatedAt" }
  | { readonly kind: "clear" }
  | { readonly kind: "value"; readonly index: number; readonly read: "string" | "int32" | "double" | "enum" | "time" }
  /** Decoded by protobuf-es: the record is then converted from its message. */
  | { readonly kind: "generic" };

/** Signals, inside one record, that it needs protobuf-es. */
const GENERIC = Symbol("generic");

export function createWireRecords(spec: EntitySpec, schema: DescMessage): WireRecords {
  const lookup = fieldLookup(spec);
  const slots: (Slot | undefined)[] = [];
  /** Catalog fields without explicit presence: absent on the wire, they hold their zero value (as in a decoded message). */
  const implicit: { index: number; zero: string | number }[] = [];
  for (const field of schema.fields) {
    const slot = slotOf(spec, field);
    slots[field.number] = slot;
    if (slot.kind === "value" && field.presence === IMPLICIT && field.fieldKind !== "message") implicit.push({ index: slot.index, zero: slot.read === "string" ? "" : 0 });
  }
  const fields = spec.fields;
  const nameBytes = Buffer.from(spec.table);

  /** Wire type each slot's field must arrive with; any other is left to protobuf-es. */
  const wireTypes = slots.map((slot) => (slot === undefined ? -1 : expectedWireType(slot)));
  const cursor = new WireCursor();
  const keyCount = spec.keys.length;
  const scratch: unknown[] = new Array(fields.length);

  /** One record into a patch; GENERIC when it needs protobuf-es. */
  const decodeOne = (bytes: Uint8Array, index: number, receivedAt: number, fail: (field: string, description: string) => void, lacking: Map<number, string[]>): Patch | typeof GENERIC => {
    const c = cursor;
    c.reset(bytes);
    const keys = new Array<string>(keyCount).fill("");
    // One scratch array for every record, emptied as each begins (decoding is synchronous).
    const values = scratch;
    values.fill(undefined);
    let updatedAt: number | undefined;
    let clearFields: string[] | undefined;
    try {
      while (c.pos < c.end) {
        const tag = c.tag();
        const number = tag >>> 3;
        const slot = slots[number];
        if (slot === undefined) {
          c.skip(tag & 7);
          continue;
        }
        if ((tag & 7) !== wireTypes[number]) return GENERIC;
        switch (slot.kind) {
          case "key":
            keys[slot.index] = c.string();
            break;
          case "updatedAt":
            // A message field given twice merges its parts: rare enough to leave to protobuf-es.
            if (updatedAt !== undefined) return GENERIC;
            updatedAt = c.timestampMicros();
            break;
          case "clear":
            (clearFields ??= []).push(c.string());
            break;
          case "value":
            switch (slot.read) {
              case "string":
                values[slot.index] = c.string();
                break;
              case "int32":
              case "enum":
                values[slot.index] = c.int32();
                break;
              case "double":
                values[slot.index] = c.double();
                break;
              case "time":
                if (values[slot.index] !== undefined) return GENERIC;
                values[slot.index] = c.timestampMicros();
                break;
            }
            break;
          case "generic":
            return GENERIC;
        }
      }
    } catch (err) {
      if (err === NOT_FAST) return GENERIC;
      throw err;
    }
    for (let k = 0; k < keys.length; k++) {
      const problem = keyProblem(keys[k]);
      if (problem) fail(spec.keys[k]!.name, problem);
    }
    let stamp = receivedAt;
    if (updatedAt !== undefined) {
      if (Number.isNaN(updatedAt)) fail("updated_at", TIME_PROBLEM);
      else stamp = updatedAt;
    }
    for (const { index: i, zero } of implicit) if (values[i] === undefined) values[i] = zero;
    const patch = createPatch(spec.table, keys, stamp, NONE_SET);
    for (let i = 0; i < fields.length; i++) {
      const value = values[i];
      const field = fields[i]!;
      if (!isSet(field, value)) continue;
      if (field.rule.type === "time") {
        // Read as µs already (NaN: out of range).
        if (Number.isNaN(value)) fail(field.name, TIME_PROBLEM);
        else addField(patch, field.name, value as number);
        continue;
      }
      const converted = convert(field, value);
      if (typeof converted === "object" && converted !== null) fail(field.name, converted.problem);
      else addField(patch, field.name, converted);
    }
    finishRecord(spec, lookup, patch, clearFields ?? NONE, index, fail, lacking);
    return patch;
  };

  return {
    table: spec.table,
    decode(records, receivedAt, maxRecords) {
      const violations: FieldViolation[] = [];
      const patches: Patch[] = [];
      const lacking = new Map<number, string[]>();
      if (records.length === 0 || records.length > maxRecords) {
        violations.push({ field: spec.listName, description: `must hold 1 to ${maxRecords} records, got ${records.length}` });
        return { patches, violations, lacking };
      }
      let index = 0;
      // One reporter for the batch; the record's path is made only for a violation.
      const fail = (field: string, description: string) => void violations.push({ field: `${spec.listName}[${index}].${field}`, description });
      for (; index < records.length; index++) {
        const bytes = records[index]!;
        let patch: Patch | typeof GENERIC;
        try {
          patch = decodeOne(bytes, index, receivedAt, fail, lacking);
          if (patch === GENERIC) patch = recordPatch(spec, lookup, fromBinary(schema, bytes) as never, index, receivedAt, fail, lacking);
        } catch (err) {
          if (err instanceof ConnectError) throw err;
          throw new ConnectError(`parse binary: ${(err as Error)?.message ?? String(err)}`, Code.Internal);
        }
        patches.push(patch);
      }
      return { patches, violations, lacking };
    },
    logFrame(records, receivedAt) {
      let size = FRAME_HEAD + nameBytes.length;
      for (const r of records) size += 4 + r.length;
      const frame = Buffer.allocUnsafe(size);
      frame[0] = WIRE_FRAME;
      frame[1] = nameBytes.length;
      nameBytes.copy(frame, 2);
      let offset = 2 + nameBytes.length;
      frame.writeDoubleLE(receivedAt, offset);
      frame.writeUInt32LE(records.length, offset + 8);
      offset += 12;
      for (const r of records) {
        frame.writeUInt32LE(r.length, offset);
        frame.set(r, offset + 4);
        offset += 4 + r.length;
      }
      return frame;
    },
  };
}

/** First byte of a log frame of wire records (frames of patches as JSON start with `[`). */
const WIRE_FRAME = 0x01;
/** Tag, name length, receivedAt (f64), record count (u32), before the name's bytes are counted. */
const FRAME_HEAD = 2 + 8 + 4;
const NONE: readonly string[] = [];
const NONE_SET: [string, FieldValue][] = [];
const IMPLICIT = 2;

/** Whether a log frame payload holds wire records (see WireRecords.logFrame). */
export function isWireFrame(payload: Buffer): boolean {
  return payload.length > 0 && payload[0] === WIRE_FRAME;
}

/** The patches of a wire frame, decoded by the entity it names; throws when no decoder knows that entity. */
export function readWireFrame(payload: Buffer, decoders: ReadonlyMap<string, WireRecords>): { patches: Patch[]; violations: FieldViolation[] } {
  const nameLength = payload[1]!;
  const table = payload.toString("utf8", 2, 2 + nameLength);
  const decoder = decoders.get(table);
  if (!decoder) throw new Error(`write-ahead log: a frame of ${table} records, which no write path decodes`);
  let offset = 2 + nameLength;
  const receivedAt = payload.readDoubleLE(offset);
  const count = payload.readUInt32LE(offset + 8);
  offset += 12;
  const records: Uint8Array[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const length = payload.readUInt32LE(offset);
    records[i] = payload.subarray(offset + 4, offset + 4 + length);
    offset += 4 + length;
  }
  const { patches, violations } = decoder.decode(records, receivedAt, Infinity);
  return { patches, violations };
}

function slotOf(spec: EntitySpec, field: DescField): Slot {
  const key = spec.keys.findIndex((k) => k.prop === field.localName);
  if (key >= 0 && field.fieldKind === "scalar" && field.scalar === ScalarType.STRING) return { kind: "key", index: key };
  if (field.localName === "updatedAt" && field.fieldKind === "message" && field.message.typeName === TIMESTAMP) return { kind: "updatedAt" };
  if (field.localName === "clearFields" && field.fieldKind === "list" && field.listKind === "scalar" && field.scalar === ScalarType.STRING) return { kind: "clear" };
  const index = spec.fields.findIndex((f) => f.prop === field.localName);
  const spec_ = spec.fields[index];
  const read = spec_ ? readOf(spec_, field) : undefined;
  return read ? { kind: "value", index, read } : { kind: "generic" };
}

const TIMESTAMP = "google.protobuf.Timestamp";

/** How the decoder reads a catalog field, or undefined when it leaves it to protobuf-es. */
function readOf(spec: FieldSpec, field: DescField): "string" | "int32" | "double" | "enum" | "time" | undefined {
  switch (spec.rule.type) {
    case "string":
      return field.fieldKind === "scalar" && field.scalar === ScalarType.STRING ? "string" : undefined;
    case "int":
      return field.fieldKind === "scalar" && field.scalar === ScalarType.INT32 ? "int32" : undefined;
    case "double":
      return field.fieldKind === "scalar" && field.scalar === ScalarType.DOUBLE ? "double" : undefined;
    case "status":
      return field.fieldKind === "enum" ? "enum" : undefined;
    case "time":
      return field.fieldKind === "message" && field.message.typeName === TIMESTAMP ? "time" : undefined;
    case "json":
      return undefined;
  }
}

/** The wire type a slot's field arrives with: varint, 64-bit or length-delimited. */
function expectedWireType(slot: Slot): number {
  switch (slot.kind) {
    case "value":
      return slot.read === "double" ? 1 : slot.read === "int32" || slot.read === "enum" ? 0 : 2;
    case "generic":
      return -1;
    default:
      return 2;
  }
}
