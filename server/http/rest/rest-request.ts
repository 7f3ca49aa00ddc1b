import { ScalarType, type DescField, type DescMessage, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import type { FieldViolation } from "../../core/errors.js";
import type { RestRoute } from "./http-rules.js";
import { findField, fromRestJson, isWellKnown, resolveFieldPath, wrappedField, type RestJsonOptions } from "./rest-json.js";

/** What a REST request carries besides its verb. */
export interface RestRequestParts {
  /** Path variables by field path, percent-decoded. */
  readonly pathValues: ReadonlyMap<string, string>;
  readonly query: URLSearchParams;
  /** The parsed JSON body; undefined when there was none. */
  readonly body: unknown;
}

/**
 * The RPC request, in proto3 JSON, that a REST request stands for (google.api.http semantics): path
 * variables set their fields, the body is the whole request (`body: "*"`) or one field of it, and the
 * query parameters set any other field, nested ones by dotted path, repeated ones by repeating the key.
 * Unlike google.api.http, the query binds on `body: "*"` routes too (the original callers put
 * `dry_run` there); a field given in both the body and the query is refused, as is a parameter that
 * names no field, whatever `ignoreUnknownFields` says: a parameter the caller sent is never dropped.
 */
export function restRequestToJson(
  route: RestRoute,
  parts: RestRequestParts,
  options: RestJsonOptions,
): { readonly json: JsonValue; readonly violations: FieldViolation[] } {
  const violations: FieldViolation[] = [];
  const input = route.method.input;
  let request: JsonObject = {};
  if (route.body === "*") {
    if (parts.body !== undefined) {
      if (typeof parts.body !== "object" || parts.body === null || Array.isArray(parts.body)) {
        return { json: null, violations: [{ field: "body", description: "expected a JSON object" }] };
      }
      request = { ...(parts.body as JsonObject) };
    }
  } else if (route.body !== undefined && parts.body !== undefined) {
    request[route.body] = parts.body as JsonValue;
  }

  for (const key of new Set(parts.query.keys())) {
    const target = queryTarget(input, key);
    if (typeof target === "string") {
      violations.push({ field: key, description: target });
      continue;
    }
    const { fieldPath, field } = target;
    if (route.template.fields.includes(fieldPath)) {
      violations.push({ field: key, description: "is set by the path" });
      continue;
    }
    if (route.body !== undefined && route.body !== "*" && fieldPath.split(".")[0] === route.body) {
      violations.push({ field: key, description: "is set by the body" });
      continue;
    }
    if (route.body === "*" && givenAt(input, request, fieldPath) !== undefined) {
      violations.push({ field: key, description: "given in both the body and the query; give it once" });
      continue;
    }
    const values = parts.query.getAll(key).map((v) => fromText(field, v));
    if (field.fieldKind === "list") setPath(input, request, fieldPath, values);
    else if (values.length > 1) violations.push({ field: key, description: "given more than once" });
    else setPath(input, request, fieldPath, values[0] ?? null);
  }

  for (const [fieldPath, text] of parts.pathValues) {
    const field = resolveFieldPath(input, fieldPath);
    if (!field) continue; // checked when the route table was built
    const value = fromText(field, text);
    const given = givenAt(input, request, fieldPath);
    if (given !== undefined && given !== null && given !== value) {
      violations.push({ field: fieldPath, description: `the body says ${JSON.stringify(given)} but the path says ${JSON.stringify(text)}` });
    }
    setPath(input, request, fieldPath, value);
  }

  const json = fromRestJson(input, request, violations, options);
  return { json: violations.length > 0 ? null : json, violations };
}

const UNKNOWN = "unknown query parameter";

/** The field a query parameter sets, or why it cannot set one. */
function queryTarget(input: RestRoute["method"]["input"], key: string): { fieldPath: string; field: DescField } | string {
  let desc = input;
  const names: string[] = [];
  const parts = key.split(".");
  for (const [i, part] of parts.entries()) {
    const field = findField(desc, part);
    if (!field) return UNKNOWN;
    names.push(field.name);
    const last = i === parts.length - 1;
    if (field.fieldKind === "message" && !isWellKnown(field.message)) {
      if (last) return "names a message; set its fields instead (e.g. name.field=value)";
      desc = field.message;
      continue;
    }
    if (!last) return UNKNOWN;
    if (field.fieldKind === "map" || (field.fieldKind === "list" && field.listKind === "message" && !isWellKnown(field.message))) {
      return "cannot be set from the query string";
    }
    return { fieldPath: names.join("."), field };
  }
  return UNKNOWN;
}

/**
 * Boolean spellings in the query and the path: the original's (FastAPI, so Pydantic's, any case:
 * Python callers send `True`) and the bare key (`?dry_run`) for true.
 */
const TRUE_TEXT = new Set(["", "true", "1", "t", "y", "yes", "on"]);
const FALSE_TEXT = new Set(["false", "0", "f", "n", "no", "off"]);

/** A query or path value as the JSON that field expects: booleans become booleans, the rest stays text (checked later). */
function fromText(field: DescField, text: string): JsonValue {
  const isBool =
    ((field.fieldKind === "scalar" || (field.fieldKind === "list" && field.listKind === "scalar")) && field.scalar === ScalarType.BOOL) ||
    (field.fieldKind === "message" && wrappedField(field.message)?.scalar === ScalarType.BOOL);
  if (isBool) {
    const lower = text.toLowerCase();
    if (TRUE_TEXT.has(lower)) return true;
    if (FALSE_TEXT.has(lower)) return false;
  }
  return text;
}

/**
 * The key `node` holds `field` under: its JSON (lowerCamel) name when the body spelt it so, its
 * proto name otherwise, so a query or path value lands on the body's spelling rather than beside it.
 */
function keyOf(node: JsonObject, field: DescField): string {
  return !Object.hasOwn(node, field.name) && Object.hasOwn(node, field.jsonName) ? field.jsonName : field.name;
}

function isJsonObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Sets a field path that `resolveFieldPath` accepts, creating the objects on the way. */
function setPath(input: DescMessage, target: JsonObject, fieldPath: string, value: JsonValue): void {
  let desc = input;
  let node = target;
  const parts = fieldPath.split(".");
  for (const [i, part] of parts.entries()) {
    const field = findField(desc, part);
    if (!field) return;
    const key = keyOf(node, field);
    if (i === parts.length - 1) {
      node[key] = value;
      return;
    }
    const next = node[key];
    node = isJsonObject(next) ? next : (node[key] = {});
    if (field.fieldKind !== "message") return;
    desc = field.message;
  }
}

/**
 * What the request already says about a field path, in either spelling: the value at its end, or
 * the value of a field on the way that is not an object (`null`, say), which decides it too;
 * undefined when nothing does.
 */
function givenAt(input: DescMessage, source: JsonObject, fieldPath: string): JsonValue | undefined {
  let desc = input;
  let node = source;
  const parts = fieldPath.split(".");
  for (const [i, part] of parts.entries()) {
    const field = findField(desc, part);
    if (!field) return undefined;
    const value = node[keyOf(node, field)];
    if (i === parts.length - 1 || !isJsonObject(value)) return value;
    if (field.fieldKind !== "message") return undefined;
    node = value;
    desc = field.message;
  }
  return undefined;
}
