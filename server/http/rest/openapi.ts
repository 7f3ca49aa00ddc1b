import { getOption, hasOption, ScalarType, type DescEnum, type DescField, type DescMessage, type DescMethod, type JsonObject } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { codeName } from "../../core/errors.js";
import { restStatus } from "./rest-errors.js";
import type { AccessTable } from "../../security/access.js";
import { METRICS_REQUIREMENT, type Requirement } from "../../security/scopes.js";
import type { RestRoute } from "./http-rules.js";
import { FieldBehavior } from "../../../gen/google/api/field_behavior_pb.js";
import { rest_responses } from "../../../gen/persistence/v1/common_pb.js";
import { comments } from "../../../gen/persistence/v1/comments.js";
import { hasBehavior, isWellKnown, minValue, resolveFieldPath, restName, shortEnumName, shortEnumNames, wrappedField } from "./rest-json.js";

export interface OpenApiInfo {
  readonly title: string;
  readonly version: string;
  readonly description?: string;
  /** The license the document states (SPDX identifier), e.g. `Apache-2.0`. */
  readonly license?: string;
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
    if (!schemas[desc.typeName]) schemas[desc.typeName] = { type: "string", enum: shortEnumNames(desc), ...described(enumDescription(desc)) };
    return ref(desc.typeName);
  };
  /** The schema of `desc`, without the fields in `omit` (those a route's path binds) under a name of its own. */
  const messageSchema = (desc: DescMessage, omit: readonly string[] = []): JsonObject => {
    const wk = wellKnownSchema(desc);
    if (wk) return wk;
    const name = omit.length === 0 ? desc.typeName : `${desc.typeName}Body`;
    if (!schemas[name]) {
      const properties: JsonObject = {};
      const required: string[] = [];
      schemas[name] = { type: "object", ...described(comments[desc.typeName]), properties, additionalProperties: false };
      for (const field of desc.fields) {
        if (omit.includes(field.name)) continue;
        const schema = { ...fieldSchema(field), ...described(comments[`${desc.typeName}.${field.name}`]) };
        if (hasBehavior(field, FieldBehavior.OUTPUT_ONLY)) schema.readOnly = true;
        if (hasBehavior(field, FieldBehavior.INPUT_ONLY)) schema.writeOnly = true;
        if (hasBehavior(field, FieldBehavior.REQUIRED)) required.push(restName(field));
        properties[restName(field)] = schema;
      }
      if (required.length > 0) schemas[name]!.required = required;
    }
    return ref(name);
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
    description: "Every error reply of the REST paths: the code in its wire spelling, a message, google.rpc details and the request id.",
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

  const responses: Record<string, JsonObject> = {};
  /** A shared error response, `#/components/responses/<status>`, defined on first use. */
  const errorResponse = (status: string): JsonObject => {
    responses[status] ??= {
      description: ERROR_RESPONSES[status] ?? `An error (${status}).`,
      content: { "application/json": { schema: ref("Error") } },
      ...(status === "429" || status === "503" ? { headers: { "Retry-After": { $ref: "#/components/headers/RetryAfter" } } } : {}),
    };
    return { $ref: `#/components/responses/${status}` };
  };
  /** Every 4xx and 5xx an operation can answer, by status. */
  const errorsOf = (method: DescMethod | undefined, requirement: Requirement | undefined, hasBody: boolean): JsonObject => {
    const statuses = new Set(["400", "401", "403", "500", "503"]);
    if (requirement?.openWith !== "health") statuses.add("429"); // health checks are never rate limited
    if (hasBody) statuses.add("413");
    if (method && hasOption(method, rest_responses)) for (const code of getOption(method, rest_responses).errors) statuses.add(String(restStatus(code as number as Code)));
    const out: JsonObject = {};
    for (const status of [...statuses].sort()) out[status] = errorResponse(status);
    return out;
  };

  const paths: Record<string, JsonObject> = {};
  const tags = new Map<string, string | undefined>();
  const operationIds = new Set<string>();
  for (const route of routes) {
    const { method } = route;
    tags.set(method.parent.name, comments[method.parent.typeName]);
    const parameters: JsonObject[] = route.template.fields.map((name) => ({
      name,
      in: "path",
      required: true,
      ...described(fieldComment(method.input, name)),
      schema: fieldSchema(fieldAt(method.input, name)),
    }));
    // The query sets every field the path and a one-field body do not, on `body: "*"` routes too.
    const bodyField = route.body === "*" ? undefined : route.body;
    for (const [name, field] of queryFields(method.input, "", 0)) {
      if (route.template.fields.includes(name) || (bodyField !== undefined && name.split(".")[0] === bodyField)) continue;
      const schema = fieldSchema(field);
      const min = minValue(field);
      if (min !== undefined) schema.minimum = min;
      parameters.push({
        name,
        in: "query",
        ...described(fieldComment(method.input, name)),
        ...(route.body === undefined && !name.includes(".") && hasBehavior(field, FieldBehavior.REQUIRED) ? { required: true } : {}),
        schema,
        ...(field.fieldKind === "list" ? { explode: true } : {}),
      });
    }
    let operationId = `${method.parent.name}_${method.name}`;
    for (let n = 2; operationIds.has(operationId); n++) operationId = `${method.parent.name}_${method.name}_${n}`;
    operationIds.add(operationId);
    const reply = route.responseBody ? fieldSchema(route.responseBody) : messageSchema(method.output);
    const requirement = info.access?.get(`/${method.parent.typeName}/${method.name}`);
    const { security, note } = securityOf(requirement);
    const streaming = method.methodKind === "server_streaming";
    const content: JsonObject = streaming
      ? { "text/event-stream": { schema: { type: "string" } }, "application/x-ndjson": { schema: reply } }
      : { "application/json": { schema: reply } };
    const declared = hasOption(method, rest_responses) ? getOption(method, rest_responses) : undefined;
    const operation: JsonObject = {
      operationId,
      tags: [method.parent.name],
      summary: `${method.parent.name}.${method.name}`,
      description: `${comments[`${method.parent.typeName}.${method.name}`] ?? ""}\n\nRPC \`${method.parent.typeName}/${method.name}\`${streaming ? " (server stream)" : ""}.${note}`.trim(),
      security,
      parameters,
      responses: {
        "200": { description: streaming ? "One event (or line) per message of the stream." : "OK", content },
        ...errorsOf(method, requirement, route.body !== undefined),
        ...(declared?.replyStatus ? { [String(declared.replyStatus)]: { description: declared.replyStatusDescription || "The reply, with this status.", content } } : {}),
      },
    };
    if (route.body !== undefined) {
      const omit = route.body === "*" ? route.template.fields.filter((f) => !f.includes(".")) : [];
      const bodyDesc = route.body === "*" ? method.input : undefined;
      const schema = bodyDesc ? messageSchema(bodyDesc, omit) : fieldSchema(fieldAt(method.input, route.body));
      const required = bodyDesc
        ? bodyDesc.fields.some((f) => !omit.includes(f.name) && hasBehavior(f, FieldBehavior.REQUIRED))
        : hasBehavior(fieldAt(method.input, route.body), FieldBehavior.REQUIRED);
      operation.requestBody = { required, content: { "application/json": { schema } } };
    }
    const path = (paths[route.template.openApiPath] ??= {});
    path[route.verb.toLowerCase()] = operation;
  }
  const metricsAccess = securityOf(METRICS_REQUIREMENT);
  tags.set("SystemService", tags.get("SystemService"));
  paths["/metrics"] = {
    get: {
      operationId: "Metrics",
      tags: ["SystemService"],
      summary: "Prometheus metrics",
      description: `Prometheus text exposition format.${metricsAccess.note}`,
      security: metricsAccess.security,
      responses: {
        "200": { description: "Prometheus text exposition format.", content: { "text/plain": { schema: { type: "string" } } } },
        ...errorsOf(undefined, METRICS_REQUIREMENT, false),
      },
    },
  };

  return {
    openapi: "3.1.0",
    info: {
      title: info.title,
      version: info.version,
      ...(info.description ? { description: info.description } : {}),
      ...(info.license ? { license: { name: info.license, identifier: info.license } } : {}),
    },
    servers: [{ url: "/" }],
    tags: [...tags].map(([name, description]) => ({ name, ...described(description) })),
    paths,
    components: {
      schemas,
      responses,
      headers: {
        RetryAfter: { description: "Seconds to wait before retrying (from the error's google.rpc.RetryInfo).", schema: { type: "integer", minimum: 1 } },
      },
      securitySchemes: SECURITY_SCHEMES,
    },
  };
}

/** What each error status of the REST paths means, as the operations' responses describe it. */
const ERROR_RESPONSES: Record<string, string> = {
  "400": "Invalid input: a field breaks the contract (each violation named in `errors` and in a google.rpc.BadRequest detail), or a query parameter names no field.",
  "401": "No API key, or one the service does not know.",
  "403": "The API key lacks the scope this operation needs.",
  "404": "The entity the path names does not exist.",
  "409": "A precondition failed: the request cannot be answered as asked (the message says why, a google.rpc.PreconditionFailure detail names what).",
  "413": "The request body is larger than `PERSISTENCE_MAX_REQUEST_BYTES`.",
  "429": "A rate limit, or the write buffer, is full: nothing was done; retry after `Retry-After` seconds.",
  "500": "An unexpected error. The body carries only the request id; the cause is in the server log.",
  "503": "A backend this call needs is down, or the instance is shutting down or turning connections away: retry after `Retry-After` seconds.",
};

/** `{ description }` when there is one, else nothing (so a schema without comment stays bare). */
function described(text: string | undefined): JsonObject {
  return text ? { description: text } : {};
}

/** An enum's comment and each value's, under its REST name. */
function enumDescription(desc: DescEnum): string | undefined {
  const values = desc.values
    .filter((v) => v.number !== 0 || !v.name.endsWith("_UNSPECIFIED"))
    .map((v) => [shortEnumName(desc, v.name), comments[`${desc.typeName}.${v.name}`]] as const)
    .filter(([, text]) => text !== undefined)
    .map(([name, text]) => `- \`${name}\`: ${text!.replace(/\n/g, " ")}`);
  const text = [comments[desc.typeName], values.join("\n")].filter((t) => t).join("\n\n");
  return text || undefined;
}

/** The comment of the field at a dotted path of `desc`. */
function fieldComment(desc: DescMessage, path: string): string | undefined {
  const names = path.split(".");
  let message: DescMessage | undefined = desc;
  for (const [i, name] of names.entries()) {
    const field: DescField | undefined = message?.fields.find((f) => f.name === name);
    if (!field || !message) return undefined;
    if (i === names.length - 1) return comments[`${message.typeName}.${name}`];
    message = field.fieldKind === "message" ? field.message : undefined;
  }
  return undefined;
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
