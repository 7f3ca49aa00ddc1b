import { execFile, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import http2 from "node:http2";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { promisify } from "node:util";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, createClient } from "@connectrpc/connect";
import { createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus as Serving } from "../../gen/grpc/health/v1/health_pb";
import { ServerReflection } from "../../gen/grpc/reflection/v1/reflection_pb";
import { SystemService } from "../../gen/persistence/v1/system_pb";
import { BatchUpsertTasksRequestSchema, TaskSchema, TranslationService } from "../../gen/persistence/v1/translation_pb";
import { errorOf } from "../support/errors";
import { getHealth } from "../support/health";
import { freePort } from "../support/private-mariadb";
import { secret } from "../support/secrets";
import { ROOT, startServiceProcess, type ServiceProcess } from "../support/service-process";
import { createSqlTarget, MYSQL_SERVER, withMysql } from "../support/sql-targets";
import { createTcpProxy, type TcpProxy } from "../support/tcp-proxy";

const run = promisify(execFile);
const BUF = path.join(ROOT, "node_modules", ".bin", "buf");

/** The service's protos as @grpc/grpc-js loads them, an independent gRPC implementation. */
function loadGrpcJs() {
  const definition = protoLoader.loadSync(["persistence/v1/system.proto", "persistence/v1/translation.proto", "grpc/health/v1/health.proto"], {
    includeDirs: [path.join(ROOT, "proto")],
    keepCase: true,
    defaults: true,
    enums: String,
  });
  return grpc.loadPackageDefinition(definition) as unknown as {
    persistence: { v1: { SystemService: grpc.ServiceClientConstructor; TranslationService: grpc.ServiceClientConstructor } };
    grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
  };
}

/** One unary call through a @grpc/grpc-js client. */
function call<T>(client: grpc.Client, method: string, request: object): Promise<T> {
  return new Promise<T>((resolve, reject) =>
    (client as unknown as Record<string, (r: object, cb: (e: Error | null, v: T) => void) => void>)[method]!(request, (e, v) => (e ? reject(e) : resolve(v))),
  );
}

describe("npm start", () => {
  it("is the command these suites run, and serves on the embedded default", async () => {
    const pkg = (await import(path.join(ROOT, "package.json"))) as { scripts: Record<string, string> };
    expect(pkg.scripts.start).toBe("node scripts/start.js");
    const child = spawn("npm", ["start", "--silent"], {
      cwd: ROOT,
      detached: true,
      env: { ...process.env, PERSISTENCE_LISTEN: "127.0.0.1:0", PERSISTENCE_DATA_DIR: mkdtempSync(path.join(os.tmpdir(), "persistence-npm-")) },
      stdio: ["ignore", "pipe", "inherit"],
    });
    const exited = new Promise((resolve) => child.once("exit", resolve));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        child.once("exit", () => reject(new Error("npm start exited")));
        readline.createInterface({ input: child.stdout! }).on("line", (line) => {
          if (line.includes('"listening"')) resolve(String((JSON.parse(line) as { url: string }).url));
        });
      });
      expect((await fetch(`${url}/health`)).status).toBe(200);
    } finally {
      process.kill(-child.pid!, "SIGTERM"); // the whole group: npm and the service under it
      await exited;
    }
  });
});

describe("the service on the embedded default", () => {
  let service: ServiceProcess;
  beforeAll(async () => {
    service = await startServiceProcess();
  });
  afterAll(async () => {
    await service?.stop();
  });

  it("runs the README's REST examples as printed, each answering 200 with JSON", async () => {
    const readme = readFileSync(path.join(ROOT, "README.md"), "utf8");
    const section = readme.slice(readme.indexOf("## REST: the original HTTP paths"));
    const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1] ?? "";
    const commands = block
      .replace(/\\\n\s*/g, "")
      .split("\n")
      .filter((line) => line.startsWith("curl "));
    expect(commands.length).toBe(19);
    const host = new URL(service.url).host;
    const replies: Record<string, unknown>[] = [];
    for (const command of commands) {
      const { stdout } = await run("bash", ["-c", `${command.replaceAll("localhost:8001", host)} -w '\\n%{http_code}'`]);
      const lines = stdout.split("\n");
      const status = lines.pop();
      expect({ command, status }).toEqual({ command, status: "200" });
      replies.push(JSON.parse(lines.join("\n")) as Record<string, unknown>);
    }
    expect(replies[0]).toMatchObject({ status: "accepted", count: 1, durability: "logged" });
    expect(replies[2]).toMatchObject({ status: "flushed", sessions_written: 1, tasks_written: 1 });
    // The example declares 2 tasks and has sent 1: the declared total stands, the stored count beside it.
    expect(replies[3]).toMatchObject({ filename: "quests.xlsx", status: "processing", total_tasks: 2, pending_tasks: 2, stored_tasks: { total: 1, pending: 1 } });
    expect(replies.at(-7)).toMatchObject({ session: { status: "completed" } });
    expect(replies.at(-6)).toMatchObject({ dry_run: true });
    expect(replies.at(-5)).toMatchObject({ dry_run: true });
    expect(replies.at(-4)).toEqual({ status: "soft_deleted", session_id: "8d0c6f1e-0000-4000-8000-0000000000aa", deleted_tasks: 0, hidden_tasks: 1, timestamp: expect.stringMatching(/Z$/) });
  });

  it("answers curl on /health and a Connect JSON POST over HTTP/1.1", async () => {
    const health = await run("curl", ["-s", "-w", "\\n%{http_code} %{http_version}", `${service.url}/health`]);
    const [body, status] = health.stdout.split("\n");
    expect(status).toBe("200 1.1");
    expect(JSON.parse(body ?? "")).toMatchObject({ status: "healthy", backends: { sql: "up" } });

    const info = await run("curl", [
      "-s", "-X", "POST", "-H", "Content-Type: application/json", "-d", "{}",
      `${service.url}/persistence.v1.SystemService/GetInfo`,
    ]);
    expect(JSON.parse(info.stdout)).toMatchObject({ name: "persistence", backends: { sql: "sqlite" } });
  });

  it("lists its services to buf curl over gRPC reflection and says SERVING", async () => {
    const list = await run(BUF, ["curl", "--protocol", "grpc", "--http2-prior-knowledge", "--reflect", "--list-services", service.url]);
    expect(list.stdout.trim().split("\n")).toEqual(
      expect.arrayContaining(["persistence.v1.TranslationService", "persistence.v1.SystemService", "grpc.health.v1.Health"]),
    );
    const check = await run(BUF, ["curl", "--protocol", "grpc", "--http2-prior-knowledge", `${service.url}/grpc.health.v1.Health/Check`]);
    expect(JSON.parse(check.stdout)).toEqual({ status: "SERVING" });
    const info = await run(BUF, ["curl", "--protocol", "connect", `${service.url}/persistence.v1.SystemService/GetInfo`, "--http2-prior-knowledge"]);
    expect(JSON.parse(info.stdout).name).toBe("persistence");
  });

  it("reports the RPC's code through buf curl's exit status", () => {
    const res = spawnSync(BUF, [
      "curl", "--protocol", "grpc", "--http2-prior-knowledge", "-d", '{"session_id":"no-such-session"}',
      `${service.url}/persistence.v1.TranslationService/GetSession`,
    ]);
    expect(res.status).toBe(5 * 8); // NOT_FOUND
  });

  it("serves the generated client over gRPC and gRPC-Web", async () => {
    const grpcClient = createClient(SystemService, createGrpcTransport({ baseUrl: service.url, idleConnectionTimeoutMs: 100 }));
    expect((await grpcClient.getInfo({})).name).toBe("persistence");
    expect((await createClient(Health, createGrpcTransport({ baseUrl: service.url, idleConnectionTimeoutMs: 100 })).check({})).status).toBe(
      Serving.SERVING,
    );
    const webClient = createClient(SystemService, createGrpcWebTransport({ baseUrl: service.url, httpVersion: "1.1" }));
    expect((await webClient.getHealth({})).status).toBe("healthy");
  });

  it("interoperates with @grpc/grpc-js loading the same .proto files", async () => {
    const loaded = loadGrpcJs();
    const address = service.url.replace(/^http:\/\//, "");
    const system = new loaded.persistence.v1.SystemService(address, grpc.credentials.createInsecure());
    const health = new loaded.grpc.health.v1.Health(address, grpc.credentials.createInsecure());
    const translation = new loaded.persistence.v1.TranslationService(address, grpc.credentials.createInsecure());
    try {
      const info = await call<{ name: string; services: string[] }>(system, "GetInfo", {});
      expect(info.name).toBe("persistence");
      expect(info.services).toContain("persistence.v1.TranslationService");
      expect(await call<{ status: string }>(health, "Check", { service: "persistence.v1.SystemService" })).toEqual({ status: "SERVING" });

      const written = await call<{ status: string; count: number; durability: string }>(translation, "BatchUpsertTasks", {
        tasks: [{ session_id: "grpc-js", task_id: "TASK_0001", sheet_name: "Dialogue", row_index: 3, status: "TASK_STATUS_PROCESSING", confidence: 0.5 }],
        durability: "DURABILITY_COMMITTED",
      });
      expect(written).toMatchObject({ status: "accepted", count: 1, durability: "DURABILITY_COMMITTED" });
      const read = await call<{ task: Record<string, unknown> }>(translation, "GetTask", { session_id: "grpc-js", task_id: "TASK_0001" });
      expect(read.task).toMatchObject({ session_id: "grpc-js", task_id: "TASK_0001", sheet_name: "Dialogue", row_index: 3, status: "TASK_STATUS_PROCESSING", confidence: 0.5 });
      const missing = await call(translation, "GetSession", { session_id: "nobody" }).catch((e: grpc.ServiceError) => e);
      expect((missing as grpc.ServiceError).code).toBe(grpc.status.NOT_FOUND);
    } finally {
      system.close();
      health.close();
      translation.close();
    }
  });

  it("shows gRPC error messages as plain text to @grpc/grpc-js and the Connect gRPC client, non-ASCII and '%' included", async () => {
    const invalid = [
      { request: { session_id: "", task_id: "TASK_0001" }, message: "invalid request: tasks[0].session_id: is required" },
      {
        request: { session_id: "grpc-message", task_id: "TASK_0001", clear_fields: ["源文本 100%"] },
        message: 'invalid request: tasks[0].clear_fields[0]: unknown field "源文本 100%"',
      },
    ];
    const translation = new (loadGrpcJs().persistence.v1.TranslationService)(service.url.replace(/^http:\/\//, ""), grpc.credentials.createInsecure());
    const connect = createClient(TranslationService, createGrpcTransport({ baseUrl: service.url, idleConnectionTimeoutMs: 100 }));
    try {
      for (const { request, message } of invalid) {
        const seen = (await call(translation, "BatchUpsertTasks", { tasks: [request] }).catch((e: unknown) => e)) as grpc.ServiceError;
        expect({ code: seen.code, details: seen.details }).toEqual({ code: grpc.status.INVALID_ARGUMENT, details: message });
        const task = { sessionId: request.session_id, taskId: request.task_id, clearFields: request.clear_fields ?? [] };
        const error = await errorOf(connect.batchUpsertTasks({ tasks: [task] }));
        expect({ code: error.code, message: error.rawMessage }).toEqual({ code: Code.InvalidArgument, message });
      }
    } finally {
      translation.close();
    }

    // On the wire: only '%' and the bytes outside 0x20-0x7E are escaped, in trailers and in a trailers-only reply.
    const session = http2.connect(service.url);
    try {
      const exchange = (path: string, body: Uint8Array) =>
        new Promise<{ headers: http2.IncomingHttpHeaders; trailers: http2.IncomingHttpHeaders }>((resolve, reject) => {
          const stream = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers" });
          let headers: http2.IncomingHttpHeaders = {};
          let trailers: http2.IncomingHttpHeaders = {};
          stream.on("response", (h) => (headers = h));
          stream.on("trailers", (t) => (trailers = t));
          stream.on("end", () => resolve({ headers, trailers }));
          stream.on("error", reject);
          stream.resume();
          const frame = Buffer.alloc(5 + body.length);
          frame.writeUInt32BE(body.length, 1);
          frame.set(body, 5);
          stream.end(frame);
        });
      const tasks = [create(TaskSchema, { sessionId: "grpc-message", taskId: "TASK_0001", clearFields: ["源文本 100%"] })];
      const refused = await exchange("/persistence.v1.TranslationService/BatchUpsertTasks", toBinary(BatchUpsertTasksRequestSchema, create(BatchUpsertTasksRequestSchema, { tasks })));
      expect(refused.trailers["grpc-message"]).toBe('invalid request: tasks[0].clear_fields[0]: unknown field "%E6%BA%90%E6%96%87%E6%9C%AC 100%25"');
      const unknown = await exchange("/persistence.v1.TranslationService/NoSuchMethod", new Uint8Array());
      expect(unknown.headers["grpc-message"]).toBe("unknown method /persistence.v1.TranslationService/NoSuchMethod");
    } finally {
      session.close();
    }
  });

  it("stops gracefully on SIGTERM", async () => {
    const own = await startServiceProcess();
    expect(await own.stop("SIGTERM")).toBe(0);
    expect(own.logs.map((l) => l.msg)).toEqual(expect.arrayContaining(["shutting down", "stopped"]));
  });
});

describe("stopping the service", () => {
  /** The exit code once `child` exits, or "still running" after `ms`. */
  function exitWithin(child: ChildProcess, ms: number): Promise<number | null | "still running"> {
    if (child.exitCode !== null) return Promise.resolve(child.exitCode);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve("still running"), ms);
      child.once("exit", (code) => {
        clearTimeout(timer);
        resolve(code);
      });
    });
  }

  it("exits on SIGTERM after whoever read its stdout has gone away, as `| head -3` does", async () => {
    const own = await startServiceProcess();
    try {
      own.child.stdout!.destroy();
      own.child.kill("SIGTERM");
      expect(await exitWithin(own.child, 30_000)).toBe(0);
    } finally {
      own.child.kill("SIGKILL");
      await own.stop();
    }
  });

  it("exits on SIGTERM while its stdout is full and nobody reads it", async () => {
    const own = await startServiceProcess();
    try {
      own.child.stdout!.pause();
      // Each call logs an access line: far more than a pipe holds.
      const info = `${own.url}/persistence.v1.SystemService/GetInfo?encoding=json&message=%7B%7D`;
      for (let i = 0; i < 1500; i++) expect((await fetch(info)).status).toBe(200);
      own.child.kill("SIGTERM");
      expect(await exitWithin(own.child, 30_000)).toBe(0);
    } finally {
      own.child.kill("SIGKILL");
      await own.stop();
    }
  });

  it("exits at once on a second signal while the first still waits for a call in flight", async () => {
    const own = await startServiceProcess({ PERSISTENCE_SHUTDOWN_TIMEOUT_MS: "600000" });
    const reflection = createClient(ServerReflection, createGrpcTransport({ baseUrl: own.url, idleConnectionTimeoutMs: 100 }));
    const caller = new AbortController();
    let release = () => {};
    async function* requests() {
      yield { host: "", messageRequest: { case: "listServices", value: "" } } as const;
      await new Promise<void>((resolve) => (release = resolve)); // keeps the call open
    }
    try {
      const responses = reflection.serverReflectionInfo(requests(), { signal: caller.signal })[Symbol.asyncIterator]();
      await responses.next();
      own.child.kill("SIGTERM");
      while (!own.logs.some((l) => l.msg === "shutting down")) await new Promise((r) => setTimeout(r, 50));
      expect(await exitWithin(own.child, 1000)).toBe("still running");
      own.child.kill("SIGTERM");
      expect(await exitWithin(own.child, 30_000)).toBe(1);
    } finally {
      release();
      caller.abort();
      own.child.kill("SIGKILL");
      await own.stop();
    }
  });
});

describe("the service on MariaDB", () => {
  it("creates its database and tables there", async () => {
    const target = createSqlTarget("mysql", "e2e");
    const service = await startServiceProcess({ PERSISTENCE_SQL_URL: target.url });
    try {
      const [rows] = await withMysql((conn) =>
        conn.query("select table_name as t from information_schema.tables where table_schema = ? order by 1", [target.database]),
      );
      expect((rows as { t: string }[]).map((r) => r.t)).toEqual(
        expect.arrayContaining(["translation_sessions", "translation_tasks"]),
      );
      const health = (await (await fetch(`${service.url}/health`)).json()) as { backends: Record<string, string> };
      expect(health.backends).toEqual({ sql: "up", events: "up", objects: "up", kv: "up", search: "up" });
    } finally {
      expect(await service.stop()).toBe(0);
      await target.drop();
    }
  });
});

describe("start-up with the database out of reach", () => {
  const RETRYING = "unreachable at start-up; retrying";

  it("retries, then gives up naming PERSISTENCE_SQL_URL with its password redacted", async () => {
    const password = secret("Start-up-pw-never-shown-1");
    const port = await freePort(); // nothing listens there
    const logs: Record<string, unknown>[] = [];
    const env = { PERSISTENCE_SQL_URL: `mysql://app:${password}@127.0.0.1:${port}/x`, PERSISTENCE_STARTUP_TIMEOUT_MS: "1500" };
    const failure = await startServiceProcess(env, 60_000, (entry) => logs.push(entry)).then(
      async (started) => {
        await started.stop();
        return "it started";
      },
      (err: Error) => err.message,
    );
    expect(failure).toMatch(
      new RegExp(`exited with 1 .*failed to start: PERSISTENCE_SQL_URL=mysql://app:\\[redacted\\]@127\\.0\\.0\\.1:${port}/x: still unreachable after \\d+ attempts in [\\d.]+ s \\(PERSISTENCE_STARTUP_TIMEOUT_MS\\): connect ECONNREFUSED`, "s"),
    );
    expect(logs.filter((l) => l.msg === RETRYING).length).toBeGreaterThanOrEqual(1);
    expect(failure + JSON.stringify(logs)).not.toContain(password);
  });

  it("waits for a database that comes up while it starts", async () => {
    const target = createSqlTarget("mysql", "startup");
    const port = await freePort();
    const url = new URL(target.url);
    url.port = String(port);
    let proxy: TcpProxy | undefined;
    let retried = () => {};
    const retrying = new Promise<void>((resolve) => (retried = resolve));
    const starting = startServiceProcess({ PERSISTENCE_SQL_URL: url.toString(), PERSISTENCE_STARTUP_TIMEOUT_MS: "600000" }, 120_000, (entry) => {
      if (entry.msg === RETRYING) retried();
    });
    try {
      await Promise.race([retrying, starting]);
      proxy = await createTcpProxy(Number(MYSQL_SERVER.port || 3306), MYSQL_SERVER.hostname, port); // the database is up now
      const service = await starting;
      expect(await getHealth(service.url)).toMatchObject({ status: 200, body: { backends: { sql: "up" } } });
      expect(await service.stop()).toBe(0);
    } finally {
      await proxy?.close();
      await target.drop();
    }
  }, 120_000);

  it("stops at once on SIGTERM while it waits for the database", async () => {
    const port = await freePort();
    let pid: number | undefined;
    const starting = startServiceProcess({ PERSISTENCE_SQL_URL: `mysql://root@127.0.0.1:${port}/x`, PERSISTENCE_STARTUP_TIMEOUT_MS: "600000" }, 60_000, (entry) => {
      if (entry.msg === RETRYING && pid === undefined) {
        pid = Number(entry.pid);
        process.kill(pid, "SIGTERM");
      }
    });
    await expect(starting).rejects.toThrow(/exited with 0 before listening/);
    expect(pid).toBeDefined();
  });
});

describe("the service with a bad setting", () => {
  it("warns at start about a setting it does not know, naming the closest known one", async () => {
    const service = await startServiceProcess({ PERSISTENCE_FLUSH_INTERVAL: "500" });
    try {
      expect(service.logs).toContainEqual(
        expect.objectContaining({ level: 40, msg: "unknown setting ignored", setting: "PERSISTENCE_FLUSH_INTERVAL", did_you_mean: "PERSISTENCE_FLUSH_INTERVAL_MS" }),
      );
    } finally {
      expect(await service.stop()).toBe(0);
    }
  });

  it("refuses to start and names the variable", async () => {
    await expect(startServiceProcess({ PERSISTENCE_FLUSH_INTERVAL_MS: "soon" }, 30_000)).rejects.toThrow(
      /exited with 2 .*PERSISTENCE_FLUSH_INTERVAL_MS: expected milliseconds/s,
    );
  });
});
