import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { sql } from "kysely";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { Durability } from "../../gen/persistence/v1/common_pb";
import { TaskStatus, TranslationService } from "../../gen/persistence/v1/translation_pb";
import { retryDelayMs } from "../../server/core/errors";
import { openWal } from "../../server/core/wal";
import { openServiceSql } from "../../server/schema";
import { runLoad, type LoadResult } from "../support/load";
import { createPrivateMariadb, type PrivateMariadb } from "../support/private-mariadb";
import { startServiceProcess } from "../support/service-process";
import { mountTmpfs } from "../support/tmpfs";
import { describeEachDialect } from "../support/sql-targets";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Flushes through the service until it reports success (the database may still be coming back). */
async function flushUntilDone(url: string): Promise<void> {
  const client = createClient(TranslationService, createConnectTransport({ baseUrl: url, httpVersion: "1.1" }));
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await client.flush({});
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(500);
    }
  }
}

/** Every acknowledged record is stored, at least at the version acknowledged. */
async function expectAllStored(sqlUrl: string, sessionId: string, load: LoadResult): Promise<void> {
  const store = await openServiceSql(sqlUrl);
  try {
    const { rows } = await sql<{ task_id: string; retry_count: number }>`select task_id, retry_count from translation_tasks where session_id = ${sessionId}`.execute(store.db);
    const stored = new Map(rows.map((r) => [r.task_id, Number(r.retry_count)]));
    const missing = [...load.acked].filter(([id, version]) => (stored.get(id) ?? 0) < version);
    expect(missing).toEqual([]);
  } finally {
    await store.close();
  }
}

describeEachDialect("faults", (target) => {
  /**
   * Runs 4 writers against a service process, kills it with SIGKILL after 1.5 s, restarts it on the
   * same data directory, and checks that every acknowledged record is stored. Returns how many
   * records the restart read back from the write-ahead log.
   */
  async function killUnderLoad(durabilities: Durability[], settings: Record<string, string>): Promise<number> {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), "persistence-kill-"));
    const env = { PERSISTENCE_SQL_URL: target().url, PERSISTENCE_DATA_DIR: dataDir, ...settings };
    const sessionId = `kill-${process.pid}-${Date.now()}`;
    try {
      const first = await startServiceProcess(env);
      const killed = sleep(1500).then(() => first.stop("SIGKILL"));
      const load = await runLoad({ url: first.url, sessionId, writers: 4, batch: 50, durabilities, until: killed, stopOnFailure: true });
      await killed;
      expect(load.acked.size).toBeGreaterThan(100);
      const second = await startServiceProcess(env);
      try {
        await flushUntilDone(second.url);
        await expectAllStored(target().url, sessionId, load);
        return Number(second.logs.find((l) => l.msg === "write-ahead log replayed")?.records ?? 0);
      } finally {
        expect(await second.stop()).toBe(0);
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }

  it("loses nothing acknowledged at LOGGED or COMMITTED when the process is killed with SIGKILL under load", async () => {
    await killUnderLoad([Durability.LOGGED, Durability.COMMITTED], { PERSISTENCE_FLUSH_INTERVAL_MS: "200" });
  }, 120_000);

  it("brings back from the write-ahead log every LOGGED record that no flush had reached when killed", async () => {
    // No flush can start before the kill (no COMMITTED writes, no size or age trigger): every
    // acknowledged record exists only in the log, so the restart must read all of them back.
    const replayed = await killUnderLoad([Durability.LOGGED], {
      PERSISTENCE_FLUSH_INTERVAL_MS: "600000",
      PERSISTENCE_FLUSH_MAX_RECORDS: "1000000",
      PERSISTENCE_BUFFER_MAX_RECORDS: "1000000",
    });
    expect(replayed).toBeGreaterThan(100);
  }, 120_000);

  it("replays a log that the previous version wrote (patches as JSON) beside frames of records as received, across a SIGKILL", async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), "persistence-oldlog-"));
    const sessionId = `oldlog-${process.pid}-${Date.now()}`;
    const env = {
      PERSISTENCE_SQL_URL: target().url,
      PERSISTENCE_DATA_DIR: dataDir,
      PERSISTENCE_FLUSH_INTERVAL_MS: "600000",
      PERSISTENCE_FLUSH_MAX_RECORDS: "1000000",
    };
    try {
      // A frame exactly as earlier versions wrote every accepted request: its patches as JSON.
      const stamp = Date.now() * 1000;
      const legacy = JSON.stringify([
        { t: "translation_tasks", k: [sessionId, "OLD_1"], s: stamp, f: [["source_text", "from the old log", stamp], ["retry_count", 7, stamp], ["created_at", stamp, stamp]] },
      ]);
      const opened = await openWal(path.join(dataDir, "wal", "translation"));
      await opened.wal.append(Buffer.from(legacy), 1);
      await opened.wal.close();

      // New frames on top, from binary writes acknowledged at LOGGED, then a SIGKILL before any flush.
      const first = await startServiceProcess(env);
      // The old frame is read back (and flushed) at the first start.
      expect(first.logs.find((l) => l.msg === "write-ahead log replayed")?.records).toBe(1);
      const client = createClient(TranslationService, createGrpcTransport({ baseUrl: first.url, idleConnectionTimeoutMs: 200 }));
      // Committed before the new frames are written.
      await client.flush({});
      await client.batchUpsertTasks({
        tasks: [
          { sessionId, taskId: "NEW_1", sourceText: "from the new log", retryCount: 1 },
          { sessionId, taskId: "OLD_1", targetText: "added later", retryCount: 8 },
        ],
        durability: Durability.LOGGED,
      });
      await first.stop("SIGKILL");

      const second = await startServiceProcess(env);
      try {
        // The two new records; the old one again too if its segment was not yet deleted at the kill (harmless: it is the same patch).
        expect(Number(second.logs.find((l) => l.msg === "write-ahead log replayed")?.records)).toBeGreaterThanOrEqual(2);
        await flushUntilDone(second.url);
        const store = await openServiceSql(target().url);
        try {
          const { rows } = await sql<{ task_id: string; source_text: string; target_text: string | null; retry_count: number }>`
            select task_id, source_text, target_text, retry_count from translation_tasks where session_id = ${sessionId} order by task_id`.execute(store.db);
          expect(rows.map((r) => ({ ...r, retry_count: Number(r.retry_count) }))).toEqual([
            { task_id: "NEW_1", source_text: "from the new log", target_text: null, retry_count: 1 },
            { task_id: "OLD_1", source_text: "from the old log", target_text: "added later", retry_count: 8 },
          ]);
        } finally {
          await store.close();
        }
      } finally {
        expect(await second.stop()).toBe(0);
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 120_000);

  // The log on a real disk that fills up: a small tmpfs (mounting needs privileges not every machine grants).
  const disk = mountTmpfs("2m", "the full-disk fault test");
  afterAll(() => disk?.remove());
  (disk ? it : it.skip)("answers UNAVAILABLE while its log's disk is full and, once space is freed, loses none of what it acknowledged after a SIGKILL", async () => {
    const mountPoint = disk!.dir;
    // Nothing flushes before the kill: every acknowledged record exists only in the log.
    const env = {
      PERSISTENCE_SQL_URL: target().url,
      PERSISTENCE_DATA_DIR: mountPoint,
      PERSISTENCE_FLUSH_INTERVAL_MS: "600000",
      PERSISTENCE_FLUSH_MAX_RECORDS: "1000000",
    };
    const sessionId = `full-${process.pid}-${Date.now()}`;
    const acked = new Map<string, number>();
    const first = await startServiceProcess(env);
    const client = createClient(TranslationService, createConnectTransport({ baseUrl: first.url, httpVersion: "1.1" }));
    const write = async (prefix: string, n: number) => {
      const tasks = Array.from({ length: 50 }, (_, i) => ({
        sessionId,
        taskId: `${prefix}_${n}_${i}`,
        sheetName: "Sheet1",
        rowIndex: n * 50 + i,
        columnName: "Text",
        sourceText: `${prefix} ${n} ${i} `.repeat(40),
        status: TaskStatus.PENDING,
        retryCount: 1,
      }));
      await client.batchUpsertTasks({ tasks, durability: Durability.LOGGED });
      for (const t of tasks) acked.set(t.taskId, 1);
    };
    writeFileSync(path.join(mountPoint, "filler"), Buffer.alloc(1900 * 1024));
    let refusal: ConnectError | undefined;
    for (let n = 0; n < 200 && !refusal; n++) await write("before", n).catch((err: unknown) => (refusal = ConnectError.from(err)));
    expect(refusal?.code).toBe(Code.Unavailable);
    expect(refusal?.rawMessage).toMatch(/write-ahead log cannot be written \(ENOSPC\)/);
    expect(retryDelayMs(refusal!)).toBeGreaterThanOrEqual(1000);

    rmSync(path.join(mountPoint, "filler"));
    for (let n = 0; n < 10; n++) await write("after", n); // 500 more records, each acknowledged
    await first.stop("SIGKILL");

    const second = await startServiceProcess(env);
    try {
      await flushUntilDone(second.url);
      await expectAllStored(target().url, sessionId, { acked, failures: {}, exhausted: [] });
      expect([...acked.keys()].filter((id) => id.startsWith("after_"))).toHaveLength(500);
    } finally {
      expect(await second.stop()).toBe(0);
    }
  }, 120_000);
});

describe("faults on a MariaDB whose max_allowed_packet is smaller than a row", () => {
  let mariadb: PrivateMariadb;
  beforeAll(async () => {
    mariadb = await createPrivateMariadb(["--max-allowed-packet=64K"]);
  });
  afterAll(async () => {
    await mariadb?.destroy();
  });

  it("moves the row it cannot send to the dead letters, keeping it whole, and goes on writing the rest", async () => {
    const sqlUrl = mariadb.url("packet");
    const dataDir = mkdtempSync(path.join(os.tmpdir(), "persistence-packet-"));
    const service = await startServiceProcess({ PERSISTENCE_SQL_URL: sqlUrl, PERSISTENCE_DATA_DIR: dataDir, PERSISTENCE_FLUSH_INTERVAL_MS: "60000" });
    const sessionId = `packet-${process.pid}`;
    try {
      const client = createClient(TranslationService, createConnectTransport({ baseUrl: service.url, httpVersion: "1.1" }));
      // Two writes within every limit merge into one row of about 120 KB: more than the server takes in a packet.
      await client.batchUpsertTasks({ tasks: [{ sessionId, taskId: "BIG", sourceText: "a".repeat(60_000), status: TaskStatus.PENDING }] });
      await client.batchUpsertTasks({ tasks: [{ sessionId, taskId: "BIG", targetText: "b".repeat(60_000) }] });
      await client.batchUpsertTasks({ tasks: [{ sessionId, taskId: "SMALL", sourceText: "fits" }] });
      const flushed = await client.flush({}, { timeoutMs: 30_000 });
      expect(flushed).toMatchObject({ tasksWritten: 1, tasksDeadLettered: 1 });
      expect(Number((await client.getRecoveryStatus({})).deadLetters)).toBe(1);

      // Later writes are not held up behind it.
      await client.batchUpsertTasks({ tasks: [{ sessionId, taskId: "LATER", sourceText: "still flows" }], durability: Durability.COMMITTED }, { timeoutMs: 30_000 });
      const store = await openServiceSql(sqlUrl);
      try {
        const { rows } = await sql<{ task_id: string }>`select task_id from translation_tasks where session_id = ${sessionId} order by task_id`.execute(store.db);
        expect(rows.map((r) => r.task_id)).toEqual(["LATER", "SMALL"]);
        const dead = await sql<{ reason: string; payload: string }>`select reason, payload from dead_letters`.execute(store.db);
        expect(dead.rows).toHaveLength(1);
        expect(dead.rows[0]!.reason).toMatch(/max_allowed_packet/);
        const stub = JSON.parse(dead.rows[0]!.payload) as { truncated: boolean; file: string };
        expect(stub.truncated).toBe(true);
        const whole = JSON.parse(readFileSync(path.join(dataDir, "dead-letters", "translation", stub.file), "utf8")) as { key: string[]; fields: Record<string, [string, number]> };
        expect(whole.key).toEqual([sessionId, "BIG"]);
        expect(whole.fields.source_text![0]).toBe("a".repeat(60_000));
        expect(whole.fields.target_text![0]).toBe("b".repeat(60_000));
      } finally {
        await store.close();
      }
    } finally {
      expect(await service.stop()).toBe(0);
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe("faults on a MariaDB that stops for 20 s under load", () => {
  let mariadb: PrivateMariadb;
  beforeAll(async () => {
    mariadb = await createPrivateMariadb();
  });
  afterAll(async () => {
    await mariadb?.destroy();
  });

  it("keeps everything it acknowledged and refuses writes only once its buffer is full", async () => {
    const sqlUrl = mariadb.url("outage");
    const maxRecords = 20_000;
    const service = await startServiceProcess({
      PERSISTENCE_SQL_URL: sqlUrl,
      PERSISTENCE_FLUSH_INTERVAL_MS: "200",
      PERSISTENCE_BUFFER_MAX_RECORDS: String(maxRecords),
    });
    const sessionId = `outage-${process.pid}`;
    try {
      const script = (async () => {
        await sleep(3000);
        await mariadb.stop();
        await sleep(20_000);
        await mariadb.start();
        await sleep(5000);
      })();
      const load = await runLoad({
        url: service.url,
        sessionId,
        writers: 4,
        batch: 100,
        durabilities: [Durability.LOGGED],
        until: script,
      });
      expect(load.failures).toEqual({});
      expect(load.exhausted.length).toBeGreaterThan(0);
      for (const message of load.exhausted) {
        const held = Number(/\((\d+) records/.exec(message)?.[1]);
        expect(held + 100).toBeGreaterThan(maxRecords);
      }
      await flushUntilDone(service.url);
      await expectAllStored(sqlUrl, sessionId, load);
      expect(load.acked.size).toBeGreaterThan(maxRecords / 2);
    } finally {
      expect(await service.stop()).toBe(0);
    }
  }, 120_000);
});
