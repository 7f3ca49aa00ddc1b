import { ScalarType, type DescField, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
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

  if (route.body !== "*") {
    for (const key of new Set(parts.query.keys())) {
      const target = queryTarget(input, key);
      if (typeof target === "string") {
        if (!options.ignoreUnknownFields || target !== UNKNOWN) violations.push({ field: key, description: target });
        continue;
      }
      const { fieldPath, field } = target;
      if (route.template.fields.includes(fieldPath)) {
        violations.push({ field: key, description: "is set by the path" });
        continue;
      }
      if (route.body !== undefined && fieldPath.split(".")[0] === route.body) {
        violations.push({ field: key, description: "is set by the body" });
        continue;
      }
      const values = parts.query.getAll(key).map((v) => fromText(field, v));
      if (field.fieldKind === "list") setPath(request, fieldPath, values);
      else if (values.length > 1) violations.push({ field: key, description: "given more than once" });
      else setPath(request, fieldPath, values[0] ?? null);
    }
  }

  for (const [fieldPath, text] of parts.pathValues) {
    const field = resolveFieldPath(input, fieldPath);
    if (!field) continue; // checked when the route table was built
    const value = fromText(field, text);
    const given = getPath(request, fieldPath, field);
    if (given !== undefined && given !== null && given !== value) {
      violations.push({ field: fieldPath, description: `the body says ${JSON.stringify(given)} but the path says ${JSON.stringify(text)}` });
    }
    setPath(request, fieldPath, value);
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

/** A query or path value as the JSON that field expects: booleans become booleans, the rest stays text (checked later). */
function fromText(field: DescField, text: string): JsonValue {
  const isBool =
    ((field.fieldKind === "scalar" || (field.fieldKind === "list" && field.listKind === "scalar")) && field.scalar === ScalarType.BOOL) ||
    (field.fieldKind === "message" && wrappedField(field.message)?.scalar === ScalarType.BOOL);
  if (isBool) {
    if (text === "" || text === "true" || text === "1") return true;
    if (text === "false" || text === "0") return false;
  }
  return text;
}

function setPath(target: JsonObject, fieldPath: string, value: JsonValue): void {
  const parts = fieldPath.split(".");
  let node = target;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    if (typeof next === "object" && next !== null && !Array.isArray(next)) node = next;
    else node = node[part] = {};
  }
  node[parts.at(-1) ?? fieldPath] = value;
}

function getPath(source: JsonObject, fieldPath: string, field: DescField): JsonValue | undefined {
  const parts = fieldPath.split(".");
  let node: JsonValue | undefined = source;
  for (const [i, part] of parts.entries()) {
    if (typeof node !== "object" || node === null || Array.isArray(node)) return undefined;
    const last = i === parts.length - 1;
    node = node[part] ?? (last ? node[field.jsonName] : undefined);
  }
  return node;
}
