import http2 from "node:http2";
import net from "node:net";
import { gzipSync } from "node:zlib";
import { create, toBinary, type DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { sql } from "kysely";
import { SystemService } from "../../gen/persistence/v1/system_pb";
import { BatchUpsertSessionsRequestSchema, BatchUpsertTasksRequestSchema, TranslationService } from "../../gen/persistence/v1/translation_pb";
import { openServiceSql } from "../../server/schema";
import { retryDelayMs } from "../../server/core/errors";
import { frame, grpcRaw } from "../support/grpc-raw";
import { describeEachDialect } from "../support/sql-targets";
import { startTestServer, type TestServer } from "../support/test-server";
import { eventually, within } from "../support/wait";

/** gRPC status codes by name. */
const INVALID_ARGUMENT = "3";
const INTERNAL = "13";
const RESOURCE_EXHAUSTED = "8";

const UNARY = [...TranslationService.methods, ...SystemService.methods].filter((m) => m.methodKind === "unary");
const path = (m: DescMethod) => `/${m.parent.typeName}/${m.name}`;

describeEachDialect("hostile input", (target) => {
  let server: TestServer;
  let snapshot: string;

  /** Every row of every table, in a stable order: what must not change. */
  const dump = async (): Promise<string> => {
    const store = await openServiceSql(target().url);
    try {
      const out: unknown[] = [];
      for (const table of ["translation_sessions", "translation_tasks", "translation_tombstones", "dead_letters"]) {
        const { rows } = await sql<Record<string, unknown>>`select * from ${sql.table(table)}`.execute(store.db);
        out.push(table, rows.map((r) => JSON.stringify(r, (_, v) => (typeof v === "bigint" ? String(v) : v))).sort());
      }
      return JSON.stringify(out);
    } finally {
      await store.close();
    }
  };

  beforeAll(async () => {
    server = await startTestServer({ PERSISTENCE_SQL_URL: target().url });
    // Some data to protect.
    const client = server.client(TranslationService);
    await client.batchUpsertSessions({ sessions: [{ sessionId: "victim", filename: "v.xlsx" }], durability: 3 });
    await client.batchUpsertTasks({ tasks: [{ sessionId: "victim", taskId: "TASK_0001", sourceText: "keep me" }], durability: 3 });
    snapshot = await dump();
  });
  afterAll(async () => {
    await server?.close();
  });
  afterEach(async () => {
    // Still serving, nothing changed.
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    await server.client(TranslationService).flush({});
    expect(await dump()).toEqual(snapshot);
  });

  it("rejects undecodable protobuf on every RPC", async () => {
    for (const method of UNARY) {
      const { status, message } = await grpcRaw(server.url, path(method), frame(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f])));
      // Connect reports a request it cannot decode as INTERNAL "parse binary: ..." (as grpc-go does).
      expect({ rpc: method.name, status, parse: message.startsWith("parse binary:") }).toEqual({ rpc: method.name, status: INTERNAL, parse: true });
    }
  });

  it("rejects truncated gRPC frames on every RPC", async () => {
    for (const method of UNARY) {
      const { status, message } = await grpcRaw(server.url, path(method), frame(new Uint8Array([0x0a, 0x01, 0x61]), 1000));
      expect({ rpc: method.name, status, message }).toEqual({ rpc: method.name, status: INVALID_ARGUMENT, message: "protocol error: incomplete envelope" });
    }
  });

  it("rejects invalid UTF-8 in protobuf strings", async () => {
    // BatchUpsertSessions { sessions: [{ session_id: "ab", filename: <0xC3 0x28> }] }
    const session = Buffer.from([0x0a, 0x02, 0x61, 0x62, 0x12, 0x02, 0xc3, 0x28]);
    const request = Buffer.concat([Buffer.from([0x0a, session.length]), session]);
    const { status, message } = await grpcRaw(server.url, "/persistence.v1.TranslationService/BatchUpsertSessions", frame(request));
    expect(status).toBe(INTERNAL);
    expect(message).toContain("not valid for encoding utf-8");
  });

  it("refuses invalid UTF-8 in JSON over Connect, gRPC and REST, naming the body", async () => {
    const body = Buffer.concat([Buffer.from('{"sessions":[{"session_id":"utf8","filename":"a'), Buffer.from([0xc3, 0x28]), Buffer.from('b"}]}')]);
    const refusal = { code: "invalid_argument", message: "invalid request: body: is not valid UTF-8" };
    for (const url of [`${server.url}/persistence.v1.TranslationService/BatchUpsertSessions`, `${server.url}/api/v1/translation/sessions/batch`]) {
      const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body });
      expect({ url, status: res.status, body: await res.json() }).toMatchObject({ url, status: 400, body: refusal });
    }
    const { status, message } = await grpcRaw(server.url, "/persistence.v1.TranslationService/BatchUpsertSessions", frame(body), { "content-type": "application/grpc+json" });
    expect({ status, message }).toEqual({ status: INVALID_ARGUMENT, message: refusal.message });
  });

  it("rejects deeply nested JSON, huge numbers and oversized bodies over Connect and REST", async () => {
    const connect = (method: string, body: string | Buffer, headers: Record<string, string> = {}) =>
      fetch(`${server.url}/persistence.v1.TranslationService/${method}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
    const deep = `{"sessions":[{"session_id":"deep","filename":"f","game_info":${'{"a":'.repeat(5000)}1${"}".repeat(5000)}}]}`;
    expect((await connect("BatchUpsertSessions", deep)).status).toBe(400);
    const restDeep = await fetch(`${server.url}/api/v1/translation/sessions/batch`, { method: "POST", headers: { "content-type": "application/json" }, body: deep });
    expect(restDeep.status).toBe(400);

    for (const big of ["1e400", "-1e400", "99999999999999999999999", "2147483648"]) {
      const body = `{"tasks":[{"session_id":"victim","task_id":"TASK_0001","row_index":${big}}]}`;
      expect((await connect("BatchUpsertTasks", body)).status).toBe(400);
      const rest = await fetch(`${server.url}/api/v1/translation/tasks/batch`, { method: "POST", headers: { "content-type": "application/json" }, body });
      expect(rest.status).toBe(400);
    }
    // row_index -1 travels as a 10-byte varint; it decodes, and validation refuses it.
    const negative = toBinary(BatchUpsertTasksRequestSchema, create(BatchUpsertTasksRequestSchema, { tasks: [{ sessionId: "victim", taskId: "TASK_0001", rowIndex: -1 }] }));
    const { status: grpcHuge, message: hugeMessage } = await grpcRaw(server.url, "/persistence.v1.TranslationService/BatchUpsertTasks", frame(negative));
    expect(grpcHuge).toBe(INVALID_ARGUMENT);
    expect(hugeMessage).toContain("tasks[0].row_index");

    const oversized = Buffer.alloc(11 * 1024 * 1024, 0x20);
    expect((await connect("BatchUpsertSessions", oversized)).status).toBe(429);
    const big = toBinary(BatchUpsertSessionsRequestSchema, create(BatchUpsertSessionsRequestSchema, { sessions: [{ sessionId: "big", filename: "x".repeat(11 * 1024 * 1024) }] }));
    const refused = await grpcRaw(server.url, "/persistence.v1.TranslationService/BatchUpsertSessions", frame(big));
    expect(refused.status).toBe(RESOURCE_EXHAUSTED);
    expect(refused.message).toMatch(/larger than configured readMaxBytes 10485760/);
    const gzipBomb = gzipSync(Buffer.alloc(64 * 1024 * 1024, 0x20));
    const bomb = await fetch(`${server.url}/api/v1/translation/sessions/batch`, { method: "POST", headers: { "content-type": "application/json", "content-encoding": "gzip" }, body: gzipBomb });
    expect(bomb.status).toBe(413);
  });

  it.each([12, 30])("answers a %i MB request with RESOURCE_EXHAUSTED, from @grpc/grpc-js and from the generated client on every protocol", async (mb) => {
    const request = { sessions: [{ sessionId: "big", filename: "x".repeat(mb * 1024 * 1024) }] };
    const bytes = Buffer.from(toBinary(BatchUpsertSessionsRequestSchema, create(BatchUpsertSessionsRequestSchema, request)));
    const grpcJs = new grpc.Client(new URL(server.url).host, grpc.credentials.createInsecure());
    try {
      const code = await new Promise<number>((resolve) => {
        const same = (b: Buffer) => b;
        grpcJs.makeUnaryRequest("/persistence.v1.TranslationService/BatchUpsertSessions", same, same, bytes, (err) => resolve(err?.code ?? grpc.status.OK));
      });
      expect(grpc.status[code]).toBe("RESOURCE_EXHAUSTED");
    } finally {
      grpcJs.close();
    }
    // Node's HTTP/2 client with its default session memory (10 MB), which is what these transports use.
    const h2 = { baseUrl: server.url, idleConnectionTimeoutMs: 200 };
    const transports = {
      grpc: createGrpcTransport(h2),
      "Connect over HTTP/2": createConnectTransport({ ...h2, httpVersion: "2" }),
      "gRPC-Web over HTTP/2": createGrpcWebTransport({ ...h2, httpVersion: "2" }),
      "Connect over HTTP/1.1": createConnectTransport({ baseUrl: server.url, httpVersion: "1.1" }),
    };
    for (const [protocol, transport] of Object.entries(transports)) {
      const code = await createClient(TranslationService, transport)
        .batchUpsertSessions(request)
        .then(() => "accepted", (err: unknown) => Code[ConnectError.from(err).code]);
      expect({ protocol, code }).toEqual({ protocol, code: "ResourceExhausted" });
    }
  });

  it.each([
    "../../etc/passwd",
    "..",
    "a/b",
    "victim\u0000",
    "victim' OR '1'='1",
    "victim; DROP TABLE translation_tasks; --",
    "x".repeat(65),
    "",
  ])("refuses the id %j on writes, reads and deletes, REST paths included", async (id) => {
    const client = server.client(TranslationService);
    const codeOf = (p: Promise<unknown>) => p.then(() => "ok", (e: { code?: number }) => String(e.code));
    expect(await codeOf(client.batchUpsertSessions({ sessions: [{ sessionId: id, filename: "f" }] }))).toBe(INVALID_ARGUMENT);
    expect(await codeOf(client.batchUpsertTasks({ tasks: [{ sessionId: "victim", taskId: id }] }))).toBe(INVALID_ARGUMENT);
    expect(await codeOf(client.getSession({ sessionId: id }))).toBe(INVALID_ARGUMENT);
    expect(await codeOf(client.deleteSession({ sessionId: id }))).toBe(INVALID_ARGUMENT);
    expect(await codeOf(client.getTask({ taskId: id, sessionId: "victim" }))).toBe(INVALID_ARGUMENT);
    // ("" has no REST path; ".." never reaches the server as a segment: the client resolves it first.)
    if (id !== "" && id !== "..") {
      const encoded = encodeURIComponent(id);
      for (const [verb, rest] of [
        ["GET", `/api/v1/translation/sessions/${encoded}`],
        ["DELETE", `/api/v1/translation/sessions/${encoded}`],
        ["GET", `/api/v1/translation/sessions/${encoded}/tasks`],
        ["POST", `/api/v1/translation/recovery/restore/${encoded}`],
      ] as const) {
        const res = await fetch(`${server.url}${rest}`, { method: verb });
        expect({ rest, status: res.status }).toEqual({ rest, status: 400 });
      }
    }
  });

  it("treats SQL-looking filter values as plain text", async () => {
    for (const evil of ["' OR 1=1 --", "Dialogue' UNION SELECT * FROM translation_sessions --", "%", "_"]) {
      const res = await fetch(`${server.url}/api/v1/translation/tasks?sheet_name=${encodeURIComponent(evil)}`);
      expect(res.status).toBe(200);
      expect(((await res.json()) as { total: number }).total).toBe(0);
      const { items } = await server.client(TranslationService).listSessions({ llmProvider: evil });
      expect(items).toEqual([]);
    }
  });

  it("answers HTTP/1.0 requests without a Host header, on RPC and REST paths, and keeps serving", async () => {
    for (const path of ["/persistence.v1.SystemService/GetInfo", "/api/v1/translation/sessions/batch"]) {
      const raw = rawConnection(server.url);
      raw.socket.write(`POST ${path} HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`);
      await within(raw.closed, "answered");
      expect({ path, reply: raw.received().split("\r\n")[0] }).toEqual({ path, reply: expect.stringMatching(/^HTTP\/1\.1 [24]\d\d /) });
    }
  });

  it("answers unknown RPCs and protocols with clear errors", async () => {
    expect((await grpcRaw(server.url, "/persistence.v1.TranslationService/DropEverything", frame(new Uint8Array()))).status).toBe("12");
    const connect = await fetch(`${server.url}/persistence.v1.TranslationService/DropEverything`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(connect.status).toBe(404);
    expect(((await connect.json()) as { code: string }).code).toBe("unimplemented");
    const wrongType = await fetch(`${server.url}/persistence.v1.TranslationService/GetStats`, { method: "POST", headers: { "content-type": "text/xml" }, body: "<x/>" });
    expect(wrongType.status).toBe(415);
  });
});

describe("hostile connections and streams", () => {
  let server: TestServer;
  const id = (name: string) => `${name}-${process.pid}-${Date.now().toString(36)}`;

  beforeAll(async () => {
    server = await startTestServer({
      PERSISTENCE_MAX_STREAMS_PER_CONNECTION: "128",
      PERSISTENCE_MAX_WATCH_STREAMS: "3",
      PERSISTENCE_MAX_WATCH_STREAMS_PER_SESSION: "2",
    });
  });
  afterAll(async () => {
    await server?.close();
  });
  afterEach(async () => {
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
  });

  it("announces a bound on concurrent streams per HTTP/2 connection", async () => {
    const session = http2.connect(server.url);
    try {
      const settings = await new Promise<http2.Settings>((resolve, reject) => {
        session.once("remoteSettings", resolve);
        session.once("error", reject);
      });
      expect(settings.maxConcurrentStreams).toBe(128);
    } finally {
      session.close();
    }
  });

  it("refuses watch streams past the bound per session and per instance with RESOURCE_EXHAUSTED", async () => {
    const client = server.client(TranslationService, "grpc");
    const [a, b, c] = [id("watch-a"), id("watch-b"), id("watch-c")];
    await client.batchUpsertSessions({ sessions: [a, b, c].map((sessionId) => ({ sessionId, filename: "w.xlsx" })), durability: 3 });
    const open: AbortController[] = [];
    /** Opens a watch and waits for its snapshot: "open", or the code and message it was refused with. */
    const watch = async (sessionId: string) => {
      const abort = new AbortController();
      try {
        await client.watchSession({ sessionId }, { signal: abort.signal })[Symbol.asyncIterator]().next();
        open.push(abort);
        return "open";
      } catch (err) {
        const { code, rawMessage } = ConnectError.from(err);
        return { code: Code[code], message: rawMessage, retryMs: retryDelayMs(ConnectError.from(err)) };
      }
    };
    try {
      expect(await watch(a)).toBe("open");
      expect(await watch(a)).toBe("open");
      expect(await watch(a)).toEqual({ code: "ResourceExhausted", message: `2 WatchSession streams are open on session "${a}", the most it allows`, retryMs: 1000 });
      expect(await watch(b)).toBe("open");
      expect(await watch(c)).toEqual({ code: "ResourceExhausted", message: "3 WatchSession streams are open on this instance, the most it allows", retryMs: 1000 });
      const rest = await fetch(`${server.url}/api/v1/translation/sessions/${c}/watch`, { headers: { accept: "text/event-stream" } });
      expect({ status: rest.status, retryAfter: rest.headers.get("retry-after") }).toEqual({ status: 429, retryAfter: "1" });
      // A watch that ends gives its place back.
      open.shift()?.abort();
      await eventually(async () => (await watch(c)) === "open");
    } finally {
      for (const abort of open) abort.abort();
    }
  });
});

/** A raw TCP connection: what it has received so far, and whether the server has closed it. */
function rawConnection(url: string): { socket: net.Socket; received: () => string; closed: Promise<void> } {
  const { hostname, port } = new URL(url);
  const socket = net.connect(Number(port), hostname);
  let received = "";
  socket.on("data", (chunk: Buffer) => (received += chunk.toString("latin1")));
  socket.on("error", () => {});
  return { socket, received: () => received, closed: new Promise((resolve) => socket.once("close", () => resolve())) };
}

/** Writes `text` one byte every 200 ms until the connection closes. */
function trickle(socket: net.Socket, text: string): void {
  let i = 0;
  const timer = setInterval(() => {
    if (socket.destroyed || i >= text.length) return clearInterval(timer);
    socket.write(text[i++]!);
  }, 200);
  socket.once("close", () => clearInterval(timer));
}

describe("slow clients", () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({ PERSISTENCE_HEADERS_TIMEOUT_MS: "1000", PERSISTENCE_REQUEST_TIMEOUT_MS: "2000", PERSISTENCE_IDLE_TIMEOUT_MS: "1500" });
  });
  afterAll(async () => {
    await server?.close();
  });
  afterEach(async () => {
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
  });

  it("answers 408 and closes an HTTP/1.1 connection whose headers or body trickle in", async () => {
    const headers = rawConnection(server.url);
    trickle(headers.socket, `GET /health HTTP/1.1\r\nHost: x\r\n${"X-Slow: 1\r\n".repeat(1000)}\r\n`);
    const body = rawConnection(server.url);
    body.socket.write("POST /persistence.v1.SystemService/GetInfo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n");
    trickle(body.socket, " ".repeat(1000));
    await within(Promise.all([headers.closed, body.closed]), "closed");
    expect(headers.received()).toMatch(/^HTTP\/1\.1 408 /);
    expect(body.received()).toMatch(/^HTTP\/1\.1 408 /);
  });

  it("closes a connection that never says what it speaks, and an HTTP/1.1 connection left idle", async () => {
    const silent = rawConnection(server.url);
    const idle = rawConnection(server.url);
    idle.socket.write("GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    await within(Promise.all([silent.closed, idle.closed]), "closed");
    expect(silent.received()).toBe("");
    expect(idle.received()).toMatch(/^HTTP\/1\.1 200 /);
  });

  it("closes an HTTP/2 connection without streams, even one whose preface trickles in", async () => {
    const session = http2.connect(server.url);
    session.on("error", () => {});
    const preface = rawConnection(server.url);
    trickle(preface.socket, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    await within(Promise.all([new Promise((resolve) => session.once("close", resolve)), preface.closed]), "closed");
  });

  it("resets an HTTP/2 stream whose request does not arrive whole, and leaves a quiet watch stream open", async () => {
    const client = server.client(TranslationService, "grpc");
    const sessionId = `quiet-${process.pid}-${Date.now().toString(36)}`;
    await client.batchUpsertSessions({ sessions: [{ sessionId, filename: "q.xlsx" }], durability: 3 });
    const watching = new AbortController();
    const watch = client.watchSession({ sessionId }, { signal: watching.signal })[Symbol.asyncIterator]();
    await watch.next();
    const session = http2.connect(server.url);
    session.on("error", () => {});
    try {
      const stream = session.request({ ":method": "POST", ":path": "/persistence.v1.SystemService/GetInfo", "content-type": "application/grpc" });
      stream.on("error", () => {});
      stream.on("data", () => {});
      stream.write(Buffer.from([0, 0, 0, 0, 10]));
      await within(new Promise((resolve) => stream.once("close", resolve)), "reset");
      expect(stream.rstCode).toBe(http2.constants.NGHTTP2_CANCEL);
      // The watch outlived both timeouts, and still follows its session.
      await client.updateSessionStatus({ sessionId, status: 3 });
      expect((await watch.next()).value?.session?.status).toBe(3);
    } finally {
      session.close();
      watching.abort();
    }
  });
});

describe("connection floods", () => {
  /** `n` connections that have not sent anything yet (they count from the moment they are accepted). */
  const hold = async (url: string, n: number) => {
    const held = Array.from({ length: n }, () => rawConnection(url));
    await Promise.all(held.map(({ socket }) => new Promise((resolve) => socket.once("connect", resolve))));
    return held;
  };
  /** The status and body an HTTP/2 client gets for GET /health. */
  const h2Get = (url: string) =>
    new Promise<{ status: unknown; retryAfter: unknown; body: string }>((resolve, reject) => {
      const session = http2.connect(url);
      session.on("error", reject);
      const stream = session.request({ ":path": "/health" });
      let head: http2.IncomingHttpHeaders = {};
      let body = "";
      stream.on("response", (h) => (head = h));
      stream.on("data", (chunk: Buffer) => (body += chunk.toString()));
      stream.on("end", () => {
        session.close();
        resolve({ status: head[":status"], retryAfter: head["retry-after"], body });
      });
      stream.on("error", reject);
    });
  const limited = (env: Record<string, string>) =>
    // The held connections stay silent: give them longer than the test takes to show their protocol.
    startTestServer({ PERSISTENCE_HEADERS_TIMEOUT_MS: "60000", ...env });

  it.each([
    ["from one address", { PERSISTENCE_MAX_CONNECTIONS_PER_ADDRESS: "3" }, "per_address", "3 connections are open from this address, the most it allows; retry later\n"],
    ["in all", { PERSISTENCE_MAX_CONNECTIONS: "3", PERSISTENCE_MAX_CONNECTIONS_PER_ADDRESS: "0" }, "total", "3 connections are open, the most this service allows; retry later\n"],
  ])("turns away connections past the limit %s with 503, over HTTP/1.1 and HTTP/2", async (_, env, reason, body) => {
    const server = await limited(env);
    const held = await hold(server.url, 3);
    try {
      const refused = await fetch(`${server.url}/health`);
      expect({ status: refused.status, retryAfter: refused.headers.get("retry-after"), body: await refused.text() }).toEqual({ status: 503, retryAfter: "1", body });
      expect(await h2Get(server.url)).toEqual({ status: 503, retryAfter: "1", body });
      const grpcCall = await server.client(SystemService, "grpc").getInfo({}).then(() => "served", (err: unknown) => Code[ConnectError.from(err).code]);
      expect(grpcCall).toBe("Unavailable");
      // Once they go, there is room again.
      for (const { socket } of held) socket.destroy();
      await eventually(async () => (await fetch(`${server.url}/health`)).status === 200);
      expect((await h2Get(server.url)).status).toBe(200);
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      expect(metrics).toMatch(new RegExp(`^persistence_connections_refused_total\\{reason="${reason}"\\} [1-9]`, "m"));
      expect(metrics).toMatch(/^persistence_connections_open [1-9]/m);
      expect(server.logs.find((l) => l.msg === `connections turned away: ${body.replace("; retry later\n", "")}`)).toMatchObject({ reason, refused: 1 });
    } finally {
      for (const { socket } of held) socket.destroy();
      await server.close();
    }
  });
});
