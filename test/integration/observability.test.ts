import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { loadConfig } from "../../server/config";
import { parseTraceparent } from "../../server/rpc/interceptors/trace-context";
import { ROOT } from "../support/service-process";
import { startTestServer, type TestServer } from "../support/test-server";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT = "00f067aa0ba902b7";

describe("W3C trace context", () => {
  it("joins the caller's trace as a new span, and starts a trace when the header is missing or malformed", () => {
    const joined = parseTraceparent(`00-${TRACE}-${PARENT}-01`);
    expect(joined).toMatchObject({ traceId: TRACE, parentSpanId: PARENT, sampled: true });
    expect(joined.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(joined.spanId).not.toBe(PARENT);
    // A later version may carry more fields; the first four are read as version 00's.
    expect(parseTraceparent(`01-${TRACE}-${PARENT}-00-future`)).toMatchObject({ traceId: TRACE, sampled: false });
    for (const bad of [undefined, "", "garbage", `00-${"0".repeat(32)}-${PARENT}-01`, `00-${TRACE}-${"0".repeat(16)}-01`, `ff-${TRACE}-${PARENT}-01`,
      `00-${TRACE}-${PARENT}-01-extra`, `00-${TRACE.toUpperCase()}-${PARENT}-01`]) {
      const fresh = parseTraceparent(bad);
      expect(fresh.traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(fresh.traceId).not.toBe(TRACE);
      expect(fresh.parentSpanId).toBeUndefined();
    }
  });

  describe("in the logs", () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer();
    });
    afterAll(async () => {
      await server?.close();
    });
    const callLine = (requestId: string) => server.logs.find((l) => l.msg === "call" && l.request_id === requestId);

    it.each([
      ["Connect", "/persistence.v1.SystemService/GetInfo", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }],
      ["REST", "/api/v1/translation/stats", { method: "GET" }],
    ] as const)("puts the caller's trace id and its own span id on the %s call's access log line", async (_name, url, init) => {
      const requestId = `trace-${Math.random().toString(36).slice(2)}`;
      const res = await fetch(`${server.url}${url}`, { ...init, headers: { ...("headers" in init ? init.headers : {}), traceparent: `00-${TRACE}-${PARENT}-01`, "x-request-id": requestId } });
      expect(res.status).toBe(200);
      const line = callLine(requestId);
      expect(line).toMatchObject({ trace_id: TRACE, parent_span_id: PARENT });
      expect(line?.span_id).toMatch(/^[0-9a-f]{16}$/);
    });

    it("starts a trace of its own for a call without one", async () => {
      const requestId = `trace-${Math.random().toString(36).slice(2)}`;
      await fetch(`${server.url}/api/v1/translation/stats`, { headers: { "x-request-id": requestId } });
      const line = callLine(requestId);
      expect(line?.trace_id).toMatch(/^[0-9a-f]{32}$/);
      expect(line).not.toHaveProperty("parent_span_id");
    });
  });
});

describe("PERSISTENCE_LOG_FORMAT", () => {
  it("is json by default, pretty on request, and refuses anything else naming the variable", () => {
    expect(loadConfig({}).logFormat).toBe("json");
    expect(loadConfig({ PERSISTENCE_LOG_FORMAT: "pretty" }).logFormat).toBe("pretty");
    expect(() => loadConfig({ PERSISTENCE_LOG_FORMAT: "text" })).toThrow(/PERSISTENCE_LOG_FORMAT: expected json or pretty/);
  });

  it("pretty: the process writes pino-pretty's readable lines instead of JSON", async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), "persistence-pretty-"));
    const child = spawn(process.execPath, [path.join(ROOT, "scripts", "start.js")], {
      cwd: ROOT,
      env: { ...process.env, PERSISTENCE_LISTEN: "127.0.0.1:0", PERSISTENCE_DATA_DIR: dataDir, PERSISTENCE_LOG_FORMAT: "pretty" },
      stdio: ["ignore", "pipe", "inherit"],
    });
    try {
      const lines: string[] = [];
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no listening line: ${lines.join("\n")}`)), 60_000);
        readline.createInterface({ input: child.stdout! }).on("line", (line) => {
          lines.push(line);
          if (line.includes("listening")) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      const listening = lines.find((l) => l.includes("listening"))!;
      expect(() => JSON.parse(listening)).toThrow();
      expect(listening).toMatch(/^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} [+-]\d{4}\] INFO \(persistence\): listening$/);
      expect(lines.join("\n")).toMatch(/\n\s+url: "http:\/\/127\.0\.0\.1:\d+"/);
    } finally {
      child.kill("SIGTERM");
      await new Promise((resolve) => child.once("exit", resolve));
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 90_000);
});
