import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { ROOT } from "../support/service-process";
import { startTestServer, type TestServer } from "../support/test-server";

const run = promisify(execFile);

interface Operation {
  description: string;
  parameters: { name: string; in: string; required?: boolean; description?: string }[];
  requestBody?: { required: boolean; content: Record<string, { schema: { $ref?: string } }> };
  responses: Record<string, { $ref?: string; description?: string; content?: Record<string, { schema: { $ref?: string } }> }>;
}
interface Schema {
  description?: string;
  required?: string[];
  properties?: Record<string, { description?: string }>;
}
interface Doc {
  info: { license?: { identifier: string } };
  tags: { name: string; description?: string }[];
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema>; responses: Record<string, { content: Record<string, { schema: { $ref: string } }> }> };
}

describe("the OpenAPI document, as a contract", () => {
  let server: TestServer;
  let doc: Doc;
  let text: string;
  beforeAll(async () => {
    server = await startTestServer();
    text = await (await fetch(`${server.url}/openapi.json`)).text();
    doc = JSON.parse(text) as Doc;
  });
  afterAll(async () => {
    await server?.close();
  });
  const op = (p: string, verb: string): Operation => {
    const operation = doc.paths[p]?.[verb];
    if (!operation) throw new Error(`no ${verb} ${p}`);
    return operation;
  };

  it("passes Redocly's recommended ruleset with neither errors nor warnings", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "persistence-openapi-"));
    try {
      const file = path.join(dir, "openapi.json");
      writeFileSync(file, text);
      const cli = require.resolve("@redocly/cli/bin/cli.js");
      // No telemetry or update check: the test talks to nothing but the files it wrote.
      const env = { ...process.env, REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true", NO_COLOR: "1" };
      const result = await run(process.execPath, [cli, "lint", "--config", path.join(ROOT, "redocly.yaml"), "--format", "json", file], { env, cwd: dir, maxBuffer: 32 << 20 }).catch(
        (error: { stdout: string; stderr: string }) => error,
      );
      const report = JSON.parse(result.stdout.slice(result.stdout.indexOf("{"))) as { totals: { errors: number; warnings: number }; problems: { ruleId: string; message: string }[] };
      expect(report.problems.map((p) => `${p.ruleId}: ${p.message}`)).toEqual([]);
      expect(report.totals).toMatchObject({ errors: 0, warnings: 0 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it("describes messages, fields, RPCs and services with their proto comments", () => {
    const session = doc.components.schemas["persistence.v1.Session"]!;
    expect(session.description).toMatch(/^A translation job of one uploaded spreadsheet/);
    expect(session.properties?.filename?.description).toBe("Uploaded file name, at most 255 characters; required on the first write.");
    expect(op("/api/v1/translation/sessions/{session_id}", "get").description).toMatch(/^One session with its derived progress fields\.\n\nRPC `persistence\.v1\.TranslationService\/GetSession`/);
    expect(op("/api/v1/translation/sessions/{session_id}/tasks", "get").parameters.find((p) => p.name === "status")?.description).toBe("Any of these statuses; all when empty.");
    expect(doc.tags.find((t) => t.name === "TranslationService")?.description).toMatch(/^Translation jobs \(sessions\)/);
    expect(doc.components.schemas["persistence.v1.Durability"]!.description).toContain("- `logged`: Appended to the local write-ahead log");
  });

  it("marks the fields the service requires", () => {
    expect(doc.components.schemas["persistence.v1.Task"]!.required).toEqual(["session_id", "task_id"]);
    expect(doc.components.schemas["persistence.v1.BatchUpsertTasksRequest"]!.required).toEqual(["tasks"]);
    const batch = op("/api/v1/translation/tasks/batch", "post");
    expect(batch.requestBody?.required).toBe(true);
    // The path binds session_id: the body is the rest of the request, and requires its status.
    const status = op("/api/v1/translation/sessions/{session_id}/status", "patch");
    const body = status.requestBody!.content["application/json"]!.schema.$ref!.split("/").pop()!;
    expect(doc.components.schemas[body]).toMatchObject({ required: ["status"] });
    expect(Object.keys(doc.components.schemas[body]!.properties!)).toEqual(["status", "reason"]);
    expect(op("/api/v1/translation/flush", "post").requestBody?.required).toBe(false);
  });

  it("lists each operation's error statuses with the error schema, /health's 503 with the health report", () => {
    const statuses = (o: Operation) => Object.keys(o.responses).sort();
    expect(statuses(op("/api/v1/translation/sessions/{session_id}", "get"))).toEqual(["200", "400", "401", "403", "404", "429", "500", "503"]);
    expect(statuses(op("/api/v1/translation/tasks/{task_id}", "get"))).toEqual(["200", "400", "401", "403", "404", "409", "429", "500", "503"]);
    expect(statuses(op("/api/v1/translation/tasks/batch", "post"))).toEqual(["200", "400", "401", "403", "413", "429", "500", "503"]);
    expect(statuses(op("/api/v1/translation/sessions", "get"))).not.toContain("404");
    const retry = op("/api/v1/system/dead-letters/retry", "post");
    expect(statuses(retry)).toEqual(["200", "400", "401", "403", "409", "413", "429", "500", "503"]);
    expect(retry.description).toMatch(/^Re-submits dead letters .*\n\nRPC `persistence\.v1\.SystemService\/RetryDeadLetters`/s);
    for (const response of Object.values(doc.components.responses)) expect(response.content["application/json"]!.schema.$ref).toBe("#/components/schemas/Error");

    const health = op("/health", "get");
    expect(statuses(health)).toEqual(["200", "400", "401", "403", "500", "503"]);
    expect(health.responses["503"]!.content!["application/json"]!.schema.$ref).toBe("#/components/schemas/persistence.v1.GetHealthResponse");
    expect(health.responses["503"]!.description).toMatch(/^Unhealthy/);
    expect(doc.info.license?.identifier).toBe("Apache-2.0");
  });

  it("answers with the statuses it documents", async () => {
    const missing = await fetch(`${server.url}/api/v1/translation/sessions/no-such-session`);
    expect(missing.status).toBe(404);
    expect(Object.keys(op("/api/v1/translation/sessions/{session_id}", "get").responses)).toContain(String(missing.status));
    const invalid = await fetch(`${server.url}/api/v1/translation/tasks/batch`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"tasks":[]}' });
    expect(invalid.status).toBe(400);
  });
});
