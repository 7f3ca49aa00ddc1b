import { DeleteSessionRequestSchema, GetStatsResponseSchema, ListSessionsRequestSchema, SessionSchema, TaskSchema, TranslationService } from "../../gen/persistence/v1/translation_pb";
import { GetHealthResponseSchema, SystemService } from "../../gen/persistence/v1/system_pb";
import { BoolValueSchema, BytesValueSchema, DurationSchema, FieldMaskSchema, Int64ValueSchema, StructSchema } from "@bufbuild/protobuf/wkt";
import type { FieldViolation } from "../../server/core/errors";
import { readHttpRules } from "../../server/http/rest/http-rules";
import { buildOpenApi } from "../../server/http/rest/openapi";
import { parsePathTemplate } from "../../server/http/rest/path-template";
import { fromRestJson, normalizeTime, toRestJson } from "../../server/http/rest/rest-json";
import { restRequestToJson } from "../../server/http/rest/rest-request";
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

describe("REST request", () => {
  const routes = readHttpRules([TranslationService, SystemService]);
  const routeOf = (name: string) => {
    const route = routes.find((r) => r.method.name === name);
    if (!route) throw new Error(`no route for ${name}`);
    return route;
  };
  const build = (name: string, query: string, body?: unknown, pathValues: Record<string, string> = {}, options = STRICT) =>
    restRequestToJson(routeOf(name), { pathValues: new Map(Object.entries(pathValues)), query: new URLSearchParams(query), body }, options);

  it("binds query parameters on a body: \"*\" route, alone or beside the body", () => {
    expect(build("CleanupSessions", "completed_days=90&failed_days=30&cancelled_days=7&dry_run=true")).toEqual({
      json: { completed_days: 90, failed_days: 30, cancelled_days: 7, dry_run: true },
      violations: [],
    });
    expect(build("CleanupSessions", "dry_run=1", { completed_days: 90 })).toEqual({ json: { completed_days: 90, dry_run: true }, violations: [] });
    expect(build("CleanupSessions", "dryRun=0&completedDays=5").json).toEqual({ dry_run: false, completed_days: 5 });
  });

  it.each([
    ...["true", "True", "1", "yes", "ON", "t", "y", ""].map((text) => [text, true] as const),
    ...["false", "FALSE", "0", "no", "off", "f", "n"].map((text) => [text, false] as const),
  ])("reads the boolean dry_run=%s as %s", (text, value) => {
    expect(build("CleanupSessions", `dry_run=${text}`)).toEqual({ json: { dry_run: value }, violations: [] });
  });

  it.each(["maybe", "2", "truee", " true"])("refuses the boolean dry_run=%s", (text) => {
    expect(build("CleanupSessions", `dry_run=${encodeURIComponent(text)}`).violations).toEqual([{ field: "dry_run", description: "expected true or false" }]);
    expect(build("BatchUpsertSessions", "durability=committed", { sessions: [] }).json).toEqual({ sessions: [], durability: "DURABILITY_COMMITTED" });
  });

  it("refuses a field given in both the body and the query, whatever the spelling or value", () => {
    const both = [{ field: "dry_run", description: "given in both the body and the query; give it once" }];
    expect(build("CleanupSessions", "dry_run=true", { dry_run: false }).violations).toEqual(both);
    expect(build("CleanupSessions", "dry_run=true", { dry_run: true }).violations).toEqual(both);
    expect(build("CleanupSessions", "dry_run=true", { dryRun: false }).violations).toEqual(both);
    expect(build("CleanupSessions", "dry_run=true", { dry_run: null }).violations).toEqual(both);
    expect(build("CleanupSessions", "dryRun=true", { dry_run: false }).violations).toEqual([{ field: "dryRun", description: both[0]?.description }]);
  });

  it("refuses query parameters that name no field, a path field or a field the query cannot set, on body routes too", () => {
    expect(build("CleanupSessions", "dryrun=true").violations).toEqual([{ field: "dryrun", description: "unknown query parameter" }]);
    expect(build("CleanupSessions", "dryrun=true", { legacy: 1 }, {}, { ignoreUnknownFields: true })).toEqual({
      json: null,
      violations: [{ field: "dryrun", description: "unknown query parameter" }],
    });
    expect(build("CleanupSessions", "", { dry_run: true, legacy: 1 }, {}, { ignoreUnknownFields: true })).toEqual({ json: { dry_run: true }, violations: [] });
    expect(build("UpdateSessionStatus", "session_id=b", { status: "failed" }, { session_id: "a" }).violations).toEqual([
      { field: "session_id", description: "is set by the path" },
    ]);
    expect(build("BatchUpsertSessions", "sessions=x").violations).toEqual([{ field: "sessions", description: "cannot be set from the query string" }]);
    expect(build("CleanupSessions", "dry_run=true&dry_run=false").violations).toEqual([{ field: "dry_run", description: "given more than once" }]);
    expect(build("CleanupSessions", "completed_days=ninety").violations).toEqual([{ field: "completed_days", description: "expected an integer" }]);
  });

  it("checks a path value against the body in either spelling", () => {
    expect(build("UpdateSessionStatus", "", { sessionId: "b", status: "failed" }, { session_id: "a" }).violations).toEqual([
      { field: "session_id", description: 'the body says "b" but the path says "a"' },
    ]);
    expect(build("UpdateSessionStatus", "", { sessionId: "a", status: "failed" }, { session_id: "a" })).toEqual({
      json: { session_id: "a", status: "SESSION_STATUS_FAILED" },
      violations: [],
    });
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
      { field: "sort_by", description: "must be one of created_at, updated_at, session_id, filename, status" },
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

  it("reads a JSON null in a record as emptying its field, and elsewhere as not set", () => {
    const out: FieldViolation[] = [];
    const json = fromRestJson(
      TaskSchema,
      {
        task_id: "T1",
        session_id: null,
        status: null,
        error_message: null,
        targetText: null,
        start_time: null,
        confidence: 0.5,
        clear_fields: ["context", "target_text"],
      },
      out,
      STRICT,
    );
    expect(out).toEqual([]);
    // The keys and the status have no "empty": null there is "not set", as in proto3 JSON.
    expect(json).toEqual({ task_id: "T1", session_id: null, status: null, confidence: 0.5, clear_fields: ["context", "target_text", "error_message", "start_time"] });
    // Output-only fields are ignored, null or not; a request without clear_fields keeps proto3's null.
    expect(fromRestJson(SessionSchema, { session_id: "s", estimated_completion: null, pending_tasks: null }, out, STRICT)).toEqual({ session_id: "s", estimated_completion: null, pending_tasks: null });
    expect(fromRestJson(ListSessionsRequestSchema, { llm_provider: null }, out, STRICT)).toEqual({ llm_provider: null });
    expect(out).toEqual([]);
  });

  it("drops unknown fields when told to", () => {
    const out: FieldViolation[] = [];
    expect(fromRestJson(TaskSchema, { task_id: "T", legacy: true }, out, { ignoreUnknownFields: true })).toEqual({ task_id: "T" });
    expect(out).toEqual([]);
  });

  it("writes short lowercase enum names and exact 64-bit integers as numbers", () => {
    expect(toRestJson(TaskSchema, { status: "TASK_STATUS_COMPLETED", row_index: 3 })).toMatchObject({ status: "completed", row_index: 3 });
    expect(toRestJson(GetStatsResponseSchema, { total_tasks: "12", sessions_by_status: { completed: "2" }, total_sessions: "9007199254740993" })).toMatchObject({
      total_tasks: 12,
      sessions_by_status: { completed: 2 },
      total_sessions: "9007199254740993",
    });
  });

  it("writes every field of a reply, null when it is not set, but not the input-only clear_fields", () => {
    const json = toRestJson(SessionSchema, { session_id: "s", filename: "f.xlsx", clear_fields: [], pending_tasks: 0 }) as Record<string, unknown>;
    const names = SessionSchema.fields.map((f) => f.name).filter((n) => n !== "clear_fields");
    expect(Object.keys(json).sort()).toEqual(names.sort());
    expect(json).toMatchObject({ session_id: "s", filename: "f.xlsx", pending_tasks: 0, file_path: null, estimated_completion: null, metadata: null });
    expect(json).not.toHaveProperty("clear_fields");
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
    paths: Record<string, Record<string, { parameters: { name: string; in: string; schema?: unknown }[]; requestBody?: unknown }>>;
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
      "query:sort_by",
      "query:sort_order",
      "query:order",
    ]);
    expect(list?.parameters.find((p) => p.name === "page")?.schema).toMatchObject({ type: "integer", minimum: 1 });
    expect(doc.paths["/api/v1/translation/tasks/batch"]?.post?.requestBody).toBeDefined();
    const cleanup = doc.paths["/api/v1/translation/sessions/cleanup"]?.post;
    expect(cleanup?.parameters.map((p) => `${p.in}:${p.name}`)).toEqual(["query:completed_days", "query:failed_days", "query:cancelled_days", "query:dry_run"]);
    expect(cleanup?.requestBody).toBeDefined();
    const status = doc.paths["/api/v1/translation/sessions/{session_id}/status"]?.patch;
    expect(status?.parameters.map((p) => `${p.in}:${p.name}`)).toEqual(["path:session_id", "query:status", "query:reason"]);
  });

  it("resolves every $ref and names enums by their short names", () => {
    const refs = JSON.stringify(doc).match(/#\/components\/schemas\/[\w.]+/g) ?? [];
    expect(refs.length).toBeGreaterThan(10);
    for (const ref of refs) expect(doc.components.schemas[ref.slice("#/components/schemas/".length)]).toBeDefined();
    expect(doc.components.schemas["persistence.v1.TaskStatus"]).toMatchObject({
      type: "string",
      enum: ["pending", "processing", "completed", "failed", "cancelled"],
    });
  });
});
