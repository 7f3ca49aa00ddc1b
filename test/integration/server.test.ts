import http from "node:http";
import http2 from "node:http2";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { startApp } from "../../server/app";
import { loadConfig } from "../../server/config";
import { createLogger } from "../../server/core/logger";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus as Serving } from "../../gen/grpc/health/v1/health_pb";
import { ServerReflection as ReflectionV1, ServerReflectionRequestSchema } from "../../gen/grpc/reflection/v1/reflection_pb";
import { ServerReflection as ReflectionV1Alpha } from "../../gen/grpc/reflection/v1alpha/reflection_pb";
import { Durability } from "../../gen/persistence/v1/common_pb";
import { SystemService } from "../../gen/persistence/v1/system_pb";
import { TranslationService } from "../../gen/persistence/v1/translation_pb";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { errorOf } from "../support/errors";
import { secret } from "../support/secrets";
import { getHealth, healthUntil } from "../support/health";
import { createSqlTarget, describeEachDialect, MYSQL_SERVER, withMysql } from "../support/sql-targets";
import { createTcpProxy, type TcpProxy } from "../support/tcp-proxy";
import { PROTOCOLS, startTestServer, type TestServer } from "../support/test-server";

const SERVICES = [
  "grpc.health.v1.Health",
  "grpc.reflection.v1.ServerReflection",
  "grpc.reflection.v1alpha.ServerReflection",
  "persistence.v1.SystemService",
  "persistence.v1.TranslationService",
];

/** Reads a server stream to its end. */
async function drain(stream: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of stream);
}

describeEachDialect("server", (target, dialect) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ PERSISTENCE_SQL_URL: target().url });
  });
  afterAll(async () => {
    await server?.close();
  });

  it.each(PROTOCOLS)("answers GetInfo over %s with every service and the SQL backend", async (protocol) => {
    const info = await server.client(SystemService, protocol).getInfo({});
    expect(info.name).toBe("persistence");
    expect(info.version).toMatch(/^\d+\.\d+\.\d+/);
    expect([...info.services].sort()).toEqual(SERVICES);
    // The events role is opened too (translation and system need it): in-process without PERSISTENCE_EVENTS_URL.
    expect(info.backends).toEqual({ sql: dialect, events: "memory" });
  });

  it.each(PROTOCOLS)("reports health over %s", async (protocol) => {
    const health = await server.client(SystemService, protocol).getHealth({});
    expect(health.status).toBe("healthy");
    expect(health.backends).toEqual({ sql: "up", events: "up" });
    expect(health.uptimeSeconds).toBeGreaterThanOrEqual(0);
  });

  it.each(PROTOCOLS)("echoes a payload over %s, and over REST as base64", async (protocol) => {
    const payload = new Uint8Array(4096).map((_, i) => i % 251);
    expect((await server.client(SystemService, protocol).echo({ payload })).payload).toEqual(payload);
    const rest = await fetch(`${server.url}/api/v1/system/echo`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ payload: Buffer.from("hello").toString("base64") }),
    });
    expect(await rest.json()).toEqual({ payload: Buffer.from("hello").toString("base64") });
  });

  it("serves /livez and /readyz for load balancers, and its build and backends on /metrics", async () => {
    const live = await fetch(`${server.url}/livez`);
    expect([live.status, await live.json()]).toEqual([200, { status: "live" }]);
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: "ready", backends: { sql: "up" } });
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toContain('persistence_backend_up{backend="sql"} 1');
    expect(metrics).toMatch(/persistence_build_info\{version="\d+\.\d+\.\d+",node="\d+\.\d+\.\d+"\} 1/);
  });

  it("serves GET /health and GET /metrics over plain HTTP/1.1", async () => {
    const health = await fetch(`${server.url}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: "healthy", backends: { sql: "up" } });

    await server.client(SystemService).getInfo({});
    const metrics = await fetch(`${server.url}/metrics`);
    expect(metrics.headers.get("content-type")).toMatch(/^text\/plain/);
    const text = await metrics.text();
    expect(text).toMatch(
      /grpc_server_handled_total\{grpc_service="persistence\.v1\.SystemService",grpc_method="GetInfo",grpc_type="unary",grpc_code="OK"\} [1-9]/,
    );
    expect(text).toContain('grpc_server_handling_seconds_bucket{le="0.005",grpc_service="persistence.v1.SystemService"');
    expect(text).toContain("process_resident_memory_bytes");

    const head = await fetch(`${server.url}/health`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
    const unknown = await fetch(`${server.url}/nope`);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({
      code: "not_found",
      message: "no route for GET /nope",
      details: [],
      request_id: unknown.headers.get("x-request-id"),
      detail: "no route for GET /nope",
    });
  });

  it("serves Connect GET for side-effect-free RPCs", async () => {
    const res = await fetch(`${server.url}/persistence.v1.SystemService/GetInfo?encoding=json&message=%7B%7D`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { name: string }).name).toBe("persistence");
  });

  it("answers plain Connect JSON POSTs and echoes x-request-id", async () => {
    const res = await fetch(`${server.url}/persistence.v1.SystemService/GetConfig`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": "abc-123" },
      body: "{}",
    });
    expect(res.headers.get("x-request-id")).toBe("abc-123");
    const config = (await res.json()) as { config: Record<string, unknown> };
    expect(config.config.listen).toMatch(/^127\.0\.0\.1:0$/);
    expect(config.config.sql_url).toBe(target().url);
  });

  it("summarises RPC figures in GetMetrics", async () => {
    const client = server.client(SystemService);
    for (let i = 0; i < 5; i++) await client.getInfo({});
    await errorOf(server.client(TranslationService).getSession({ sessionId: "no-such-session" }));
    const metrics = await client.getMetrics({});
    const getInfo = metrics.rpcs.find((r) => r.method === "GetInfo");
    expect(Number(getInfo?.requests)).toBeGreaterThanOrEqual(5);
    expect(getInfo?.p99Ms).toBeGreaterThan(0);
    expect(getInfo?.p50Ms).toBeLessThanOrEqual(getInfo?.p99Ms ?? 0);
    expect(getInfo?.ratePerSecond).toBeGreaterThan(0);
    const failed = metrics.rpcs.find((r) => r.method === "GetSession");
    expect(Number(failed?.errors)).toBeGreaterThanOrEqual(1);
    expect(Number(failed?.codes.not_found)).toBeGreaterThanOrEqual(1);
    expect(metrics.backends).toEqual({ sql: "up", events: "up" });
    expect(Number(metrics.process?.rssBytes)).toBeGreaterThan(10_000_000);
  });

  it.each(PROTOCOLS)("implements every TranslationService RPC (%s)", async (protocol) => {
    const client = server.client(TranslationService, protocol) as unknown as Record<string, (req: object) => unknown>;
    for (const method of TranslationService.methods) {
      const call = client[method.localName]!({ sessionId: "no-such-session" });
      const outcome = await (method.methodKind === "server_streaming" ? drain(call as AsyncIterable<unknown>) : (call as Promise<unknown>)).then(
        () => Code[0],
        (err: unknown) => Code[ConnectError.from(err).code],
      );
      expect(`${method.name}: ${outcome}`).not.toBe(`${method.name}: Unimplemented`);
    }
  });

  it("logs one access line per call with service, method, protocol, code and duration, never the payload", async () => {
    await server.client(SystemService, "grpc").getInfo({}, { headers: { "x-request-id": "log-me-1" } });
    await errorOf(server.client(TranslationService, "grpc-web").getSession({ sessionId: "secret-payload-value" }, { headers: { "x-request-id": "log-me-2" } }));
    const first = server.logs.find((l) => l.request_id === "log-me-1" && l.msg === "call");
    expect(first).toMatchObject({ service: "persistence.v1.SystemService", method: "GetInfo", protocol: "grpc", code: "ok" });
    expect(typeof first?.duration_ms).toBe("number");
    const second = server.logs.find((l) => l.request_id === "log-me-2");
    expect(second).toMatchObject({ method: "GetSession", protocol: "grpc_web", code: "not_found" });
    expect(JSON.stringify(server.logs)).not.toContain("secret-payload-value");
  });

  it("rejects a request larger than the limit and keeps serving", async () => {
    const small = await startTestServer({ PERSISTENCE_SQL_URL: target().url, PERSISTENCE_MAX_REQUEST_BYTES: "2048" });
    try {
      for (const protocol of PROTOCOLS) {
        const err = await errorOf(small.client(TranslationService, protocol).getSession({ sessionId: "x".repeat(4096) }));
        expect(err.code).toBe(Code.ResourceExhausted);
      }
      expect((await small.client(SystemService).getInfo({})).name).toBe("persistence");
    } finally {
      await small.close();
    }
  });

  describe("gRPC health", () => {
    it("says SERVING for the server and each product service, NOT_FOUND for others", async () => {
      const health = server.client(Health, "grpc");
      expect((await health.check({ service: "" })).status).toBe(Serving.SERVING);
      expect((await health.check({ service: "persistence.v1.TranslationService" })).status).toBe(Serving.SERVING);
      expect((await health.check({ service: "persistence.v1.SystemService" })).status).toBe(Serving.SERVING);
      expect((await errorOf(health.check({ service: "no.such.Service" }))).code).toBe(Code.NotFound);
      const list = await health.list({});
      expect(Object.keys(list.statuses).sort()).toEqual(["", "persistence.v1.SystemService", "persistence.v1.TranslationService"]);
    });

    it("tells watchers SERVING, then NOT_SERVING when the server stops, then ends the stream", async () => {
      const own = await startTestServer({ PERSISTENCE_SQL_URL: target().url });
      const seen: Serving[] = [];
      const watch = (async () => {
        for await (const update of own.client(Health, "grpc").watch({ service: "" })) {
          seen.push(update.status);
          if (seen.length === 1) void own.close();
        }
      })();
      await watch;
      expect(seen).toEqual([Serving.SERVING, Serving.NOT_SERVING]);
      await own.close();
    });

    it("answers SERVICE_UNKNOWN to a watcher of an unknown service", async () => {
      const controller = new AbortController();
      for await (const update of server.client(Health, "grpc").watch({ service: "nope" }, { signal: controller.signal })) {
        expect(update.status).toBe(Serving.SERVICE_UNKNOWN);
        break;
      }
    });
  });

  describe("gRPC reflection", () => {
    async function ask(version: "v1" | "v1alpha", request: Record<string, unknown>) {
      const client = version === "v1" ? server.client(ReflectionV1, "grpc") : server.client(ReflectionV1Alpha, "grpc");
      async function* one() {
        yield { host: "", messageRequest: request } as never;
      }
      for await (const response of client.serverReflectionInfo(one())) return response;
      throw new Error("no reflection response");
    }
    const fileNames = (files: Uint8Array[]) => files.map((f) => fromBinary(FileDescriptorProtoSchema, f).name);

    it.each(["v1", "v1alpha"] as const)("lists every service (%s)", async (version) => {
      const response = await ask(version, { case: "listServices", value: "" });
      expect(response.messageResponse.case).toBe("listServicesResponse");
      const names = (response.messageResponse.value as { service: { name: string }[] }).service.map((s) => s.name);
      expect(names).toEqual(SERVICES);
    });

    it("finds the file of a service, a method and a message, with its imports", async () => {
      for (const symbol of [
        "persistence.v1.TranslationService",
        "persistence.v1.TranslationService.BatchUpsertTasks",
        "persistence.v1.Task",
        "persistence.v1.TaskStatus",
      ]) {
        const response = await ask("v1", { case: "fileContainingSymbol", value: symbol });
        expect(response.messageResponse.case).toBe("fileDescriptorResponse");
        const names = fileNames((response.messageResponse.value as { fileDescriptorProto: Uint8Array[] }).fileDescriptorProto);
        expect(names[0]).toBe("persistence/v1/translation.proto");
        expect(names).toEqual(expect.arrayContaining(["google/api/annotations.proto", "google/protobuf/timestamp.proto", "persistence/v1/common.proto"]));
      }
    });

    it("finds files by name and extensions by number, and says NOT_FOUND for unknowns", async () => {
      const byName = await ask("v1", { case: "fileByFilename", value: "persistence/v1/system.proto" });
      expect(fileNames((byName.messageResponse.value as { fileDescriptorProto: Uint8Array[] }).fileDescriptorProto)[0]).toBe(
        "persistence/v1/system.proto",
      );
      const numbers = await ask("v1", { case: "allExtensionNumbersOfType", value: "google.protobuf.MethodOptions" });
      expect((numbers.messageResponse.value as { extensionNumber: number[] }).extensionNumber).toContain(72295728);
      const ext = await ask("v1", {
        case: "fileContainingExtension",
        value: { containingType: "google.protobuf.MethodOptions", extensionNumber: 72295728 },
      });
      expect(fileNames((ext.messageResponse.value as { fileDescriptorProto: Uint8Array[] }).fileDescriptorProto)[0]).toBe(
        "google/api/annotations.proto",
      );
      for (const request of [
        { case: "fileByFilename", value: "nope.proto" },
        { case: "fileContainingSymbol", value: "no.Such" },
        { case: "allExtensionNumbersOfType", value: "no.Such" },
      ]) {
        const response = await ask("v1", request);
        expect(response.messageResponse.case).toBe("errorResponse");
        expect((response.messageResponse.value as { errorCode: number }).errorCode).toBe(Code.NotFound);
      }
    });
  });

  it("refuses new connections once it has stopped", async () => {
    const own = await startTestServer({ PERSISTENCE_SQL_URL: target().url });
    const client = createClient(SystemService, createConnectTransport({ baseUrl: own.url, httpVersion: "1.1" }));
    expect((await client.getInfo({})).name).toBe("persistence");
    await own.close();
    expect((await errorOf(client.getInfo({}))).message).toMatch(/ECONNREFUSED/);
  });
});

describe("a start-up that fails part-way", () => {
  it("closes the database connections it had opened before failing (and the Redis client, the timers, the log)", async () => {
    const target = createSqlTarget("mysql", "failedstart");
    const dataDir = mkdtempSync(path.join(os.tmpdir(), "persistence-failed-start-"));
    // The write-ahead log cannot be created: its directory's name is taken by a file.
    writeFileSync(path.join(dataDir, "wal"), "not a directory");
    try {
      const config = loadConfig({ PERSISTENCE_LISTEN: "127.0.0.1:0", PERSISTENCE_DATA_DIR: dataDir, PERSISTENCE_SQL_URL: target.url, PERSISTENCE_REDIS_URL: "redis://127.0.0.1:6379" });
      await expect(startApp(config, { logger: createLogger("silent") })).rejects.toThrow();
      const [rows] = (await withMysql((conn) => conn.query("select count(*) as n from information_schema.processlist where db = ?", [target.database]))) as [{ n: number }[], unknown];
      expect(Number(rows[0]!.n)).toBe(0);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
      await target.drop();
    }
  });
});

describe("server on MariaDB when the database goes away", () => {
  const user = `pt_down_${process.pid}`;
  const password = secret("Pw-that-must-never-show-1");
  const database = `pt_down_${process.pid}`;
  let server: TestServer;

  beforeAll(async () => {
    await withMysql(async (conn) => {
      await conn.query(`drop user if exists '${user}'@'%'`);
      await conn.query(`create user '${user}'@'%' identified by '${password}'`);
      await conn.query(`grant all on \`${database}\`.* to '${user}'@'%'`);
    });
    server = await startTestServer({ PERSISTENCE_SQL_URL: `mysql://${user}:${password}@127.0.0.1:3306/${database}`, PERSISTENCE_HEALTH_INTERVAL_MS: "100" });
  });
  afterAll(async () => {
    await server?.close();
    await withMysql(async (conn) => {
      await conn.query(`drop user if exists '${user}'@'%'`);
      await conn.query(`drop database if exists \`${database}\``);
    });
  });

  async function cutOff(locked: boolean) {
    await withMysql(async (conn) => {
      await conn.query(`alter user '${user}'@'%' account ${locked ? "lock" : "unlock"}`);
      if (locked) {
        const [rows] = await conn.query(`select id from information_schema.processlist where user = ?`, [user]);
        for (const { id } of rows as { id: number }[]) await conn.query(`kill ${id}`);
      }
    });
  }

  it("answers 503 on /health and NOT_SERVING on gRPC health once a probe finds the database unreachable, and recovers", async () => {
    expect((await getHealth(server.url)).status).toBe(200);
    await cutOff(true);
    try {
      const down = await healthUntil(server.url, (h) => h.status === 503);
      expect(down.body).toMatchObject({ status: "unhealthy", backends: { sql: "down" } });
      expect((await server.client(Health, "grpc").check({ service: "" })).status).toBe(Serving.NOT_SERVING);
      // Only the services that need the database go: SystemService (health, metrics, info) still serves.
      expect((await server.client(Health, "grpc").check({ service: "persistence.v1.TranslationService" })).status).toBe(Serving.NOT_SERVING);
      expect((await server.client(Health, "grpc").check({ service: "persistence.v1.SystemService" })).status).toBe(Serving.SERVING);
      const ready = await fetch(`${server.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({ status: "not_ready", backends: { sql: "down" } });
      expect((await fetch(`${server.url}/livez`)).status).toBe(200);
      expect(await (await fetch(`${server.url}/metrics`)).text()).toContain('persistence_backend_up{backend="sql"} 0');
      expect((await server.client(SystemService).getHealth({})).status).toBe("unhealthy");
    } finally {
      await cutOff(false);
    }
    await healthUntil(server.url, (h) => h.status === 200);
    expect((await server.client(Health, "grpc").check({ service: "" })).status).toBe(Serving.SERVING);
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    expect(await (await fetch(`${server.url}/metrics`)).text()).toContain('persistence_backend_up{backend="sql"} 1');
  });

  it("never shows the database password in GetConfig or the logs", async () => {
    const config = await server.client(SystemService).getConfig({});
    expect(config.config?.sql_url).toBe(`mysql://${user}:[redacted]@127.0.0.1:3306/${database}`);
    expect(JSON.stringify(config)).not.toContain(password);
    expect(JSON.stringify(server.logs)).not.toContain(password);
  });
});

describe("health while the database hangs", () => {
  const target = createSqlTarget("mysql", "hang");
  let proxy: TcpProxy;
  beforeAll(async () => {
    proxy = await createTcpProxy(Number(MYSQL_SERVER.port || 3306), MYSQL_SERVER.hostname);
  });
  afterAll(async () => {
    proxy?.thaw();
    await proxy?.close();
    await target.drop();
  });

  /** A service whose database sits behind the proxy. */
  function startBehindProxy(settings: Record<string, string>): Promise<TestServer> {
    const url = new URL(target.url);
    url.port = String(proxy.port);
    return startTestServer({ PERSISTENCE_SQL_URL: url.toString(), PERSISTENCE_HEALTH_INTERVAL_MS: "100", ...settings });
  }

  it("answers /health from the last probe, with its age, while a probe waits on a database that does not answer", async () => {
    // The probe would wait 10 minutes: any answer before then did not wait for it.
    const server = await startBehindProxy({ PERSISTENCE_HEALTH_TIMEOUT_MS: "600000" });
    try {
      expect(await getHealth(server.url)).toMatchObject({ status: 200, body: { backends: { sql: "up" } } });
      proxy.freeze();
      while (proxy.heldBytes() === 0) await new Promise((r) => setTimeout(r, 20)); // a probe's ping is stuck
      const stuckSince = Date.now();
      await new Promise((r) => setTimeout(r, 200));
      const asked = Date.now();
      const during = await getHealth(server.url);
      expect(during).toMatchObject({ status: 200, body: { status: "healthy", backends: { sql: "up" } } });
      // The state predates the stuck probe, and says so.
      expect(during.body.backends_age_ms).toBeGreaterThanOrEqual(asked - stuckSince);
      expect((await server.client(Health, "grpc").check({ service: "" })).status).toBe(Serving.SERVING);
    } finally {
      proxy.thaw();
      await server.close();
    }
  });

  it("turns /health to 503 once a probe times out, and back to 200 once the database answers", async () => {
    const server = await startBehindProxy({ PERSISTENCE_HEALTH_TIMEOUT_MS: "300" });
    try {
      proxy.freeze();
      const down = await healthUntil(server.url, (h) => h.status === 503);
      expect(down.body).toMatchObject({ status: "unhealthy", backends: { sql: "down" } });
      proxy.thaw();
      const up = await healthUntil(server.url, (h) => h.status === 200);
      expect(up.body.backends).toEqual({ sql: "up", events: "up" });
    } finally {
      proxy.thaw();
      await server.close();
    }
  });
});

describe("the listener", () => {
  it("drops a connection that never says which protocol it speaks when the server stops, and serves others meanwhile", async () => {
    const server = await startTestServer({ PERSISTENCE_SQL_URL: "sqlite::memory:" });
    const { port } = new URL(server.url);
    const silent = net.connect(Number(port), "127.0.0.1");
    await new Promise((resolve) => silent.once("connect", resolve));
    const closed = new Promise((resolve) => silent.once("close", resolve));
    expect((await server.client(SystemService, "grpc").getInfo({})).name).toBe("persistence");
    await server.close();
    await closed;
    expect(silent.destroyed).toBe(true);
  });

  it("tells HTTP/1.1 from HTTP/2 even when the first bytes arrive one at a time", async () => {
    const server = await startTestServer({ PERSISTENCE_SQL_URL: "sqlite::memory:" });
    try {
      const { port } = new URL(server.url);
      const socket = net.connect(Number(port), "127.0.0.1");
      let reply = "";
      socket.on("data", (d: Buffer) => (reply += d.toString()));
      const ended = new Promise((resolve) => socket.once("close", resolve));
      // "P" could start the HTTP/2 preface ("PRI * HTTP/2.0"); "O" settles it as HTTP/1.1.
      for (const ch of "POST /health HTTP/1.1\r\n") {
        socket.write(ch);
        await new Promise((r) => setTimeout(r, 2));
      }
      socket.end("Host: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      await ended;
      expect(reply).toMatch(/^HTTP\/1\.1 405/);
      expect(reply).toContain('"message":"POST is not allowed on /health; allowed: GET, HEAD, OPTIONS"');
    } finally {
      await server.close();
    }
  });
});

describe("calls their callers abandon", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ PERSISTENCE_SQL_URL: "sqlite::memory:" });
    await server.client(TranslationService).batchUpsertSessions({ sessions: [{ sessionId: "abandoned", filename: "a.xlsx" }], durability: Durability.COMMITTED });
  });
  afterAll(async () => {
    await server?.close();
  });

  /** The access log line of the call with `requestId`, once the server has seen the call end. */
  async function accessLine(requestId: string): Promise<Record<string, unknown>> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const line = server.logs.find((l) => l.request_id === requestId && (l.msg === "call" || l.msg === "call failed"));
      if (line) return line;
      if (Date.now() > deadline) throw new Error(`no access log line for ${requestId}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async function handled(method: string): Promise<Record<string, number>> {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    const counts: Record<string, number> = {};
    for (const [, code, n] of text.matchAll(new RegExp(`^grpc_server_handled_total\\{[^}]*grpc_method="${method}"[^}]*grpc_code="(\\w+)"\\} (\\d+)$`, "gm"))) {
      counts[code!] = Number(n);
    }
    return counts;
  }

  function expectCancelledAtInfo(line: Record<string, unknown>, requestId: string) {
    expect(line).toMatchObject({ msg: "call", level: 30, code: "canceled" });
    expect(server.logs.filter((l) => l.request_id === requestId && Number(l.level) >= 40)).toEqual([]);
  }

  it("counts a reflection stream whose caller drops the connection as CANCELLED and logs it at info", async () => {
    const requestId = `reflection-dropped-${process.pid}`;
    const session = http2.connect(server.url);
    session.on("error", () => {});
    const stream = session.request({
      ":method": "POST",
      ":path": "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
      "content-type": "application/grpc",
      te: "trailers",
      "x-request-id": requestId,
    });
    stream.on("error", () => {});
    const request = toBinary(ServerReflectionRequestSchema, create(ServerReflectionRequestSchema, { messageRequest: { case: "listServices", value: "" } }));
    const frame = Buffer.alloc(5 + request.length);
    frame.writeUInt32BE(request.length, 1);
    frame.set(request, 5);
    stream.write(frame);
    await new Promise((resolve) => stream.once("data", resolve));
    session.destroy(); // as grpcurl does when it exits
    expectCancelledAtInfo(await accessLine(requestId), requestId);
    expect(await handled("ServerReflectionInfo")).toEqual({ Canceled: 1 });
  });

  it("counts a WatchSession its gRPC caller cancels as CANCELLED", async () => {
    const requestId = `watch-cancelled-${process.pid}`;
    const caller = new AbortController();
    const events = server.client(TranslationService, "grpc").watchSession({ sessionId: "abandoned" }, { signal: caller.signal, headers: { "x-request-id": requestId } });
    const error = await errorOf(
      (async () => {
        for await (const _ of events) caller.abort();
      })(),
    );
    expect(error.code).toBe(Code.Canceled);
    expectCancelledAtInfo(await accessLine(requestId), requestId);
  });

  it("ends a WatchSession whose deadline passes with DEADLINE_EXCEEDED, for the caller and in the log", async () => {
    const requestId = `watch-deadline-${process.pid}`;
    // The deadline as the server reads it; the client keeps listening past it.
    const events = server.client(TranslationService, "grpc").watchSession({ sessionId: "abandoned" }, { headers: { "x-request-id": requestId, "grpc-timeout": "300m" } });
    expect((await errorOf(drain(events))).code).toBe(Code.DeadlineExceeded);
    expect(await accessLine(requestId)).toMatchObject({ msg: "call", level: 30, code: "deadline_exceeded" });
  });

  it("counts a Connect WatchSession over HTTP/1.1 whose connection drops as CANCELLED", async () => {
    const requestId = `watch-dropped-${process.pid}`;
    const body = Buffer.from(JSON.stringify({ sessionId: "abandoned" }));
    const envelope = Buffer.alloc(5 + body.length);
    envelope.writeUInt32BE(body.length, 1);
    body.copy(envelope, 5);
    const request = http.request(`${server.url}/persistence.v1.TranslationService/WatchSession`, {
      method: "POST",
      headers: { "content-type": "application/connect+json", "x-request-id": requestId },
    });
    request.on("error", () => {});
    request.end(envelope);
    const response = await new Promise<http.IncomingMessage>((resolve) => request.once("response", resolve));
    await new Promise((resolve) => response.once("data", resolve));
    request.destroy();
    expectCancelledAtInfo(await accessLine(requestId), requestId);
    expect((await handled("WatchSession")).OK).toBeUndefined();
  });
});
