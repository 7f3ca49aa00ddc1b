import { ScalarType, type DescEnum, type DescField, type DescMessage, type JsonObject } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { codeName } from "../../core/errors.js";
import type { AccessTable } from "../../security/access.js";
import { METRICS_REQUIREMENT, type Requirement } from "../../security/scopes.js";
import type { RestRoute } from "./http-rules.js";
import { FieldBehavior } from "../../../gen/google/api/field_behavior_pb.js";
import { hasBehavior, isWellKnown, minValue, resolveFieldPath, restName, shortEnumNames, wrappedField } from "./rest-json.js";

export interface OpenApiInfo {
  readonly title: string;
  readonly version: string;
  readonly description?: string;
  /** What each RPC needs (from the contract): each operation's `security` and the scope it names. */
  readonly access?: AccessTable;
  /** Endpoint groups open without a key (PERSISTENCE_OPEN_ENDPOINTS): their operations say a key is optional. */
  readonly openEndpoints?: readonly string[];
}

/** Both ways of presenting an API key: `Authorization: Bearer <key>` and `x-api-key: <key>`. */
const SECURITY_SCHEMES: JsonObject = {
  bearer: { type: "http", scheme: "bearer", description: "An API key as a bearer token: `Authorization: Bearer <key>`." },
  apiKey: { type: "apiKey", in: "header", name: "x-api-key", description: "An API key in the `x-api-key` header." },
};

/** Query parameters are offered for nested message fields down to this depth. */
const MAX_QUERY_DEPTH = 3;

/**
 * An OpenAPI 3.1 document for the REST routes, built from the same descriptors the transcoder uses,
 * in the same JSON dialect: snake_case properties, enums by short lowercase names, RFC 3339 times.
 */
export function buildOpenApi(routes: readonly RestRoute[], info: OpenApiInfo): JsonObject {
  const schemas: Record<string, JsonObject> = {};
  const ref = (name: string): JsonObject => ({ $ref: `#/components/schemas/${name}` });

  const enumRef = (desc: DescEnum): JsonObject => {
    if (!schemas[desc.typeName]) schemas[desc.typeName] = { type: "string", enum: shortEnumNames(desc) };
    return ref(desc.typeName);
  };
  const messageSchema = (desc: DescMessage): JsonObject => {
    const wk = wellKnownSchema(desc);
    if (wk) return wk;
    if (!schemas[desc.typeName]) {
      const properties: JsonObject = {};
      schemas[desc.typeName] = { type: "object", properties, additionalProperties: false };
      for (const field of desc.fields) {
        const schema = fieldSchema(field);
        if (hasBehavior(field, FieldBehavior.OUTPUT_ONLY)) schema.readOnly = true;
        if (hasBehavior(field, FieldBehavior.INPUT_ONLY)) schema.writeOnly = true;
        properties[restName(field)] = schema;
      }
    }
    return ref(desc.typeName);
  };
  const fieldSchema = (field: DescField): JsonObject => {
    switch (field.fieldKind) {
      case "scalar":
        return scalarSchema(field.scalar);
      case "enum":
        return enumRef(field.enum);
      case "message":
        return messageSchema(field.message);
      case "list":
        return {
          type: "array",
          items: field.listKind === "scalar" ? scalarSchema(field.scalar) : field.listKind === "enum" ? enumRef(field.enum) : messageSchema(field.message),
        };
      case "map":
        return {
          type: "object",
          additionalProperties:
            field.mapKind === "scalar" ? scalarSchema(field.scalar) : field.mapKind === "enum" ? enumRef(field.enum) : messageSchema(field.message),
        };
    }
  };

  schemas.Error = {
    type: "object",
    required: ["code", "message", "request_id", "detail"],
    properties: {
      code: { type: "string", enum: Object.values(Code).filter((c): c is Code => typeof c === "number").map(codeName) },
      message: { type: "string" },
      details: { type: "array", items: { type: "object", properties: { "@type": { type: "string" } } } },
      request_id: { type: "string" },
      detail: { type: "string", description: "The message again, under the original design's name." },
      errors: {
        type: "array",
        description: "Invalid input only: one entry per field violation, as the original design listed them.",
        items: { type: "object", required: ["field", "message"], properties: { field: { type: "string" }, message: { type: "string" } } },
      },
    },
  };

  /** An operation's `security` (either scheme; none needed when its group is open) and the scope it needs, for its description. */
  const securityOf = (requirement: Requirement | undefined): { security: JsonObject[]; note: string } => {
    if (!requirement) return { security: [{ bearer: [] }, { apiKey: [] }], note: "" };
    const open = requirement.openWith !== undefined && (info.openEndpoints ?? []).includes(requirement.openWith);
    return {
      security: [{ bearer: [] }, { apiKey: [] }, ...(open ? [{}] : [])],
      note: ` Needs an API key with the scope \`${requirement.scope}\`${open ? " (open without a key here)" : ""}.`,
    };
  };

  const paths: Record<string, JsonObject> = {};
  const operationIds = new Set<string>();
  for (const route of routes) {
    const { method } = route;
    const parameters: JsonObject[] = route.template.fields.map((name) => ({
      name,
      in: "path",
      required: true,
      schema: fieldSchema(fieldAt(method.input, name)),
    }));
    // The query sets every field the path and a one-field body do not, on `body: "*"` routes too.
    const bodyField = route.body === "*" ? undefined : route.body;
    for (const [name, field] of queryFields(method.input, "", 0)) {
      if (route.template.fields.includes(name) || (bodyField !== undefined && name.split(".")[0] === bodyField)) continue;
      const schema = fieldSchema(field);
      const min = minValue(field);
      if (min !== undefined) schema.minimum = min;
      parameters.push({ name, in: "query", schema, ...(field.fieldKind === "list" ? { explode: true } : {}) });
    }
    let operationId = `${method.parent.name}_${method.name}`;
    for (let n = 2; operationIds.has(operationId); n++) operationId = `${method.parent.name}_${method.name}_${n}`;
    operationIds.add(operationId);
    const reply = route.responseBody ? fieldSchema(route.responseBody) : messageSchema(method.output);
    const { security, note } = securityOf(info.access?.get(`/${method.parent.typeName}/${method.name}`));
    const operation: JsonObject = {
      operationId,
      tags: [method.parent.name],
      summary: `${method.parent.name}.${method.name}`,
      description: `RPC \`${method.parent.typeName}/${method.name}\`${method.methodKind === "server_streaming" ? " (server stream)" : ""}.${note}`,
      security,
      parameters,
      responses: {
        "200": {
          description: method.methodKind === "server_streaming" ? "One event (or line) per message of the stream." : "OK",
          content:
            method.methodKind === "server_streaming"
              ? { "text/event-stream": { schema: { type: "string" } }, "application/x-ndjson": { schema: reply } }
              : { "application/json": { schema: reply } },
        },
        default: { description: "An error.", content: { "application/json": { schema: ref("Error") } } },
      },
    };
    if (route.body !== undefined) {
      const schema = route.body === "*" ? messageSchema(method.input) : fieldSchema(fieldAt(method.input, route.body));
      operation.requestBody = { required: false, content: { "application/json": { schema } } };
    }
    const path = (paths[route.template.openApiPath] ??= {});
    path[route.verb.toLowerCase()] = operation;
  }
  const metricsAccess = securityOf(METRICS_REQUIREMENT);
  paths["/metrics"] = {
    get: {
      operationId: "Metrics",
      tags: ["System"],
      summary: "Prometheus metrics",
      description: `Prometheus text exposition format.${metricsAccess.note}`,
      security: metricsAccess.security,
      responses: { "200": { description: "Prometheus text exposition format.", content: { "text/plain": { schema: { type: "string" } } } } },
    },
  };

  return {
    openapi: "3.1.0",
    info: { title: info.title, version: info.version, ...(info.description ? { description: info.description } : {}) },
    servers: [{ url: "/" }],
    paths,
    components: { schemas, securitySchemes: SECURITY_SCHEMES },
  };
}

/** Fields that can be set from the query string, by dotted path. */
function queryFields(desc: DescMessage, prefix: string, depth: number): [string, DescField][] {
  const out: [string, DescField][] = [];
  for (const field of desc.fields) {
    const name = `${prefix}${field.name}`;
    if (field.fieldKind === "message" && !isWellKnown(field.message)) {
      if (depth < MAX_QUERY_DEPTH) out.push(...queryFields(field.message, `${name}.`, depth + 1));
    } else if (field.fieldKind === "map" || (field.fieldKind === "list" && field.listKind === "message")) {
      continue;
    } else {
      out.push([name, field]);
    }
  }
  return out;
}

/** A field the route table already checked exists (path variables, body fields). */
function fieldAt(desc: DescMessage, path: string): DescField {
  const field = resolveFieldPath(desc, path);
  if (!field) throw new Error(`no field ${path} in ${desc.typeName}`);
  return field;
}

function scalarSchema(type: ScalarType): JsonObject {
  switch (type) {
    case ScalarType.STRING:
      return { type: "string" };
    case ScalarType.BYTES:
      return { type: "string", contentEncoding: "base64" };
    case ScalarType.BOOL:
      return { type: "boolean" };
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return { type: "number" };
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return { type: "integer", format: "int32" };
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return { type: "integer", minimum: 0, maximum: 2 ** 32 - 1 };
    default:
      // Exact 64-bit integers are numbers; larger ones are decimal strings.
      return { type: ["integer", "string"], format: "int64" };
  }
}

function wellKnownSchema(desc: DescMessage): JsonObject | undefined {
  if (!isWellKnown(desc)) return undefined;
  switch (desc.typeName) {
    case "google.protobuf.Timestamp":
      return { type: "string", format: "date-time", examples: ["2025-09-30T10:00:00Z"] };
    case "google.protobuf.Duration":
      return { type: "string", pattern: "^-?\\d+(\\.\\d+)?s$" };
    case "google.protobuf.Struct":
    case "google.protobuf.Any":
      return { type: "object", additionalProperties: true };
    case "google.protobuf.ListValue":
      return { type: "array" };
    case "google.protobuf.Empty":
      return { type: "object" };
    case "google.protobuf.FieldMask":
      return { type: "string" };
    case "google.protobuf.Value":
      return {};
  }
  const wrapped = wrappedField(desc);
  if (wrapped) return scalarSchema(wrapped.scalar);
  return { type: "object" };
}
