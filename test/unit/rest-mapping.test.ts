import { DeleteSessionRequestSchema, GetStatsResponseSchema, ListSessionsRequestSchema, TaskSchema, TranslationService } from "../../gen/persistence/v1/translation_pb";
import { GetHealthResponseSchema, SystemService } from "../../gen/persistence/v1/system_pb";
import { BoolValueSchema, BytesValueSchema, DurationSchema, FieldMaskSchema, Int64ValueSchema, StructSchema } from "@bufbuild/protobuf/wkt";
import type { FieldViolation } from "../../server/core/errors";
import { readHttpRules } from "../../server/http/rest/http-rules";
import { buildOpenApi } from "../../server/http/rest/openapi";
import { parsePathTemplate } from "../../server/http/rest/path-template";
import { fromRestJson, normalizeTime, toRestJson } from "../../server/http/rest/rest-json";
import { jsonDepth } from "../../server/http/rest/transcoder";

const STRICT = { ignoreUnknownFields: false };

describe("path templates", () => {
  it("binds {field}, {field=**}, nested field paths and a verb suffix", () => {
    const t = parsePathTemplate("/v1/{parent.name}/items/{path=files/**}:download");
    expect(t.fields).toEqual(["parent.name", "path"]);
    expect(t.openApiPath).toBe("/v1/{parent.name}/items/{path}:download");
    expect(t.match("/v1/shelf%201/items/files/a/b.txt:download")).toEqual(
      new Map([
        ["parent.name", "shelf 1"],
        ["path", "files/a/b.txt"],
      ]),
    );
    expect(t.match("/v1/shelf/items/other/a:download")).toBeUndefined();
    expect(t.match("/v1/shelf/items/files/a")).toBeUndefined();
  });

  it("matches the root, tolerates one trailing slash, and refuses empty or undecodable segments", () => {
    expect(parsePathTemplate("/").match("/")).toEqual(new Map());
    const t = parsePathTemplate("/api/sessions/{session_id}");
    expect(t.match("/api/sessions/abc/")?.get("session_id")).toBe("abc");
    expect(t.match("/api/sessions//")).toBeUndefined();
    expect(t.match("/api/sessions/%E0%A4%A")).toBeUndefined();
    expect(t.match("/api/sessions/a/b")).toBeUndefined();
  });

  it.each(["api", "/a/{x", "/a/**/b", "/a/{x}/{x}", "/a//b", "/a/{1x}"])("rejects the malformed template %s", (source) => {
    expect(() => parsePathTemplate(source)).toThrow(/bad path template/);
  });
});

describe("route table", () => {
  const routes = readHttpRules([TranslationService, SystemService]);

  it("routes every annotated RPC, literal paths before variables", () => {
    const annotated = [...TranslationService.methods, ...SystemService.methods];
    expect(new Set(routes.map((r) => r.method.name))).toEqual(new Set(annotated.map((m) => m.name)));
    const post = routes.filter((r) => r.verb === "POST").map((r) => r.template.source);
    expect(post.indexOf("/api/v1/translation/sessions/cleanup")).toBeGreaterThanOrEqual(0);
    const get = routes.filter((r) => r.verb === "GET" && r.template.match("/api/v1/translation/tasks/batch"));
    expect(get.map((r) => r.method.name)).toEqual(["GetTask"]);
  });
});

describe("REST JSON", () => {
  it("reads short enum names, lowerCamel names and lenient times into proto3 JSON", () => {
    const out: FieldViolation[] = [];
    const json = fromRestJson(
      TaskSchema,
      { task_id: "T1", sessionId: "s", status: "Processing", start_time: "2025-09-30T12:00:00+02:00", end_time: "2025-09-30", row_index: "7" },
      out,
      STRICT,
    );
    expect(out).toEqual([]);
    expect(json).toEqual({
      task_id: "T1",
      session_id: "s",
      status: "TASK_STATUS_PROCESSING",
      start_time: "2025-09-30T10:00:00Z",
      end_time: "2025-09-30T00:00:00Z",
      row_index: 7,
    });
  });

  it("names every bad field at once", () => {
    const out: FieldViolation[] = [];
    fromRestJson(
      ListSessionsRequestSchema,
      { status: ["pending", "nope"], page: 1.5, page_size: 2 ** 40, from_date: "yesterday", extra: 1, sort_by: 9 },
      out,
      STRICT,
    );
    expect(out).toEqual([
      { field: "status[1]", description: "must be one of pending, processing, completed, failed, cancelled" },
      { field: "page", description: "expected an integer" },
      { field: "page_size", description: "integer out of range -2147483648..2147483647" },
      { field: "from_date", description: "expected an RFC 3339 time such as 2025-09-30T10:00:00Z" },
      { field: "extra", description: "unknown field" },
      { field: "sort_by", description: "must be one of created_at, updated_at" },
    ]);
  });

  it("checks well-known types, maps, booleans and bytes", () => {
    const check = (desc: Parameters<typeof fromRestJson>[0], value: unknown) => {
      const out: FieldViolation[] = [];
      const json = fromRestJson(desc, value, out, STRICT);
      return out.length > 0 ? out : json;
    };
    expect(check(DurationSchema, 1.5)).toBe("1.5s");
    expect(check(DurationSchema, "soon")).toEqual([{ field: "body", description: 'expected a duration such as "1.5s"' }]);
    expect(check(BoolValueSchema, true)).toBe(true);
    expect(check(Int64ValueSchema, 2 ** 60)).toEqual([{ field: "body", description: "integer too large for a JSON number; send it as a string" }]);
    expect(check(Int64ValueSchema, "1152921504606846976")).toBe("1152921504606846976");
    expect(check(StructSchema, [])).toEqual([{ field: "body", description: "expected an object" }]);
    expect(check(FieldMaskSchema, "a,b.c")).toBe("a,b.c");
    expect(check(BytesValueSchema, "aGk=")).toBe("aGk=");
    expect(check(DeleteSessionRequestSchema, { session_id: "a", soft: "yes" })).toEqual([{ field: "soft", description: "expected true or false" }]);
    expect(check(GetHealthResponseSchema, { backends: { sql: 1 }, buffer: { records: -1, utilization: "NaN" } })).toEqual([
      { field: 'backends["sql"]', description: "expected a string" },
      { field: "buffer.utilization", description: "expected a number" },
    ]);
  });

  it("drops unknown fields when told to", () => {
    const out: FieldViolation[] = [];
    expect(fromRestJson(TaskSchema, { task_id: "T", legacy: true }, out, { ignoreUnknownFields: true })).toEqual({ task_id: "T" });
    expect(out).toEqual([]);
  });

  it("writes short lowercase enum names and exact 64-bit integers as numbers", () => {
    expect(toRestJson(TaskSchema, { status: "TASK_STATUS_COMPLETED", row_index: 3 })).toEqual({ status: "completed", row_index: 3 });
    expect(toRestJson(GetStatsResponseSchema, { total_tasks: "12", sessions_by_status: { completed: "2" }, total_sessions: "9007199254740993" })).toEqual({
      total_tasks: 12,
      sessions_by_status: { completed: 2 },
      total_sessions: "9007199254740993",
    });
  });

  it.each([
    ["2025-09-30T10:00:00Z", "2025-09-30T10:00:00Z"],
    ["2025-09-30T10:00:00.5Z", "2025-09-30T10:00:00.500000000Z"],
    ["2025-09-30 10:00", "2025-09-30T10:00:00Z"],
    ["2025-09-30T00:30:00-01:00", "2025-09-30T01:30:00Z"],
    ["2025-02-30T00:00:00Z", undefined],
    ["2025-09-30T24:00:00Z", undefined],
    ["30/09/2025", undefined],
  ])("normalizes the time %s", (text, expected) => {
    expect(normalizeTime(text)).toBe(expected);
  });

  it("measures JSON nesting without being fooled by brackets in strings", () => {
    expect(jsonDepth('{"a":[{"b":"[[[["}]}')).toBe(3);
    expect(jsonDepth("[".repeat(100) + "]".repeat(100))).toBe(100);
  });
});

describe("OpenAPI document", () => {
  const routes = readHttpRules([TranslationService, SystemService]);
  const doc = buildOpenApi(routes, { title: "t", version: "1" }) as {
    openapi: string;
    paths: Record<string, Record<string, { parameters: { name: string; in: string }[]; requestBody?: unknown }>>;
    components: { schemas: Record<string, unknown> };
  };

  it("lists every route with its path and query parameters", () => {
    expect(doc.openapi).toBe("3.1.0");
    for (const route of routes) expect(doc.paths[route.template.openApiPath]?.[route.verb.toLowerCase()]).toBeDefined();
    const list = doc.paths["/api/v1/translation/sessions/{session_id}/tasks"]?.get;
    expect(list?.parameters.map((p) => `${p.in}:${p.name}`)).toEqual([
      "path:session_id",
      "query:status",
      "query:sheet_name",
      "query:page",
      "query:page_size",
      "query:page_token",
    ]);
    expect(doc.paths["/api/v1/translation/tasks/batch"]?.post?.requestBody).toBeDefined();
  });

  it("resolves every $ref and names enums by their short names", () => {
    const refs = JSON.stringify(doc).match(/#\/components\/schemas\/[\w.]+/g) ?? [];
    expect(refs.length).toBeGreaterThan(10);
    for (const ref of refs) expect(doc.components.schemas[ref.slice("#/components/schemas/".length)]).toBeDefined();
    expect(doc.components.schemas["persistence.v1.TaskStatus"]).toEqual({
      type: "string",
      enum: ["pending", "processing", "completed", "failed", "cancelled"],
    });
  });
});
