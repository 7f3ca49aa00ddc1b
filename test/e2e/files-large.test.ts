import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { FileStatus, StorageService } from "../../gen/persistence/v1/storage_pb";
import { openObjectStore } from "../../server/backends/objects/open-object-store";
import { s3ServerUrl, withOwnBucket } from "../support/s3-server";
import { startServiceProcess, type ServiceProcess } from "../support/service-process";

const MiB = 1024 * 1024;
const SIZE = 500 * MiB;
/** The most a 500 MB upload may grow the service's resident memory by. */
const RSS_BUDGET = 64 * MiB;

/** A deterministic stream of `size` bytes: one random MiB, each copy stamped with its index. */
function* generated(size: number, seed: Buffer): Generator<Buffer> {
  for (let offset = 0, i = 0; offset < size; offset += MiB, i++) {
    const chunk = Buffer.from(seed.subarray(0, Math.min(MiB, size - offset)));
    chunk.writeUInt32BE(i, 0);
    yield chunk;
  }
}

function digest(size: number, seed: Buffer): string {
  const hash = createHash("sha256");
  for (const chunk of generated(size, seed)) hash.update(chunk);
  return hash.digest("hex");
}

/** A process's resident set and its high-water mark, in bytes (Linux /proc). */
function memoryOf(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kib("VmRSS"), hwm: kib("VmHWM") };
}

/** A multipart/form-data body streamed from `chunks`, never held whole; `onBytes` sees the progress. */
function formStream(name: string, chunks: Iterable<Buffer>, fields: Record<string, string>, onBytes: (sent: number) => void = () => {}) {
  const boundary = `----pt${randomBytes(8).toString("hex")}`;
  const head =
    Object.entries(fields)
      .map(([k, v]) => `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`)
      .join("") + `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\nContent-Type: application/octet-stream\r\n\r\n`;
  const iterator = chunks[Symbol.iterator]();
  let sent = 0;
  let state: "head" | "body" | "done" = "head";
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (state === "head") {
        state = "body";
        controller.enqueue(Buffer.from(head));
        return;
      }
      const next = iterator.next();
      if (next.done) {
        if (state !== "done") controller.enqueue(Buffer.from(`\r\n--${boundary}--\r\n`));
        state = "done";
        controller.close();
        return;
      }
      sent += next.value.length;
      onBytes(sent);
      controller.enqueue(next.value);
    },
  });
  return { body, contentType: `multipart/form-data; boundary=${boundary}` };
}

/** Samples the process's memory while `work` runs; the growth of its peak over the resident set before. */
async function rssGrowth(pid: number, work: () => Promise<void>): Promise<number> {
  const before = memoryOf(pid).rss;
  let peak = before;
  const timer = setInterval(() => (peak = Math.max(peak, memoryOf(pid).rss)), 50);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  peak = Math.max(peak, memoryOf(pid).rss);
  return peak - before;
}

const s3 = s3ServerUrl();
const stores: { name: string; env: () => Record<string, string>; skip?: string }[] = [
  { name: "local", env: () => ({}) },
  { name: "s3", env: (): Record<string, string> => ("url" in s3 ? { PERSISTENCE_S3_URL: withOwnBucket(s3.url, "big") } : {}), ...("skip" in s3 ? { skip: s3.skip } : {}) },
];

for (const target of stores) {
  const run = target.skip ? describe.skip : describe;
  if (target.skip) process.stderr.write(`\n*** SKIPPED: large files against ${target.name}: ${target.skip} ***\n\n`);
  run(`500 MB files in the service process [${target.name} store]`, () => {
    let service: ServiceProcess;
    let dataDir: string;
    let env: Record<string, string>;
    const seed = randomBytes(MiB);
    const client = () => createClient(StorageService, createConnectTransport({ baseUrl: service.url, httpVersion: "1.1" }));

    beforeAll(async () => {
      dataDir = mkdtempSync(path.join(os.tmpdir(), "persistence-files-"));
      env = { PERSISTENCE_DATA_DIR: dataDir, PERSISTENCE_FILES_CLEANUP_INTERVAL_MS: "0", ...target.env() };
      service = await startServiceProcess(env);
      // warm up (JIT, pools, the store's connections, a put in several parts) before anything is measured
      const warm = formStream("warm.bin", generated(40 * MiB, seed), {});
      await fetch(`${service.url}/api/v1/storage/files/upload`, { method: "POST", body: warm.body, headers: { "content-type": warm.contentType }, duplex: "half" } as RequestInit);
    }, 120_000);
    afterAll(async () => {
      await service?.stop();
      rmSync(dataDir, { recursive: true, force: true });
    });

    it("uploads 500 MB through the service (multipart/form-data, streamed) with resident memory growing < 64 MB", async () => {
      const sha256 = digest(SIZE, seed);
      let reply: { file: { status: string; size_bytes: number; sha256: string } } | undefined;
      const growth = await rssGrowth(service.child.pid!, async () => {
        const form = formStream("big.xlsx", generated(SIZE, seed), { sha256 });
        const res = await fetch(`${service.url}/api/v1/storage/files/upload`, { method: "POST", body: form.body, headers: { "content-type": form.contentType }, duplex: "half" } as RequestInit);
        reply = (await res.json()) as typeof reply;
        expect(res.status).toBe(201);
      });
      expect(reply?.file).toMatchObject({ status: "uploaded", size_bytes: SIZE, sha256 });
      process.stderr.write(`[${target.name}] 500 MiB upload through the service: RSS growth ${(growth / MiB).toFixed(1)} MiB\n`);
      expect(growth).toBeLessThan(RSS_BUDGET);
    }, 300_000);

    it("uploads 500 MB in presigned parts (parallel) and completes it with the checksum verified, memory growing < 64 MB", async () => {
      const sha256 = digest(SIZE, seed);
      const growth = await rssGrowth(service.child.pid!, async () => {
        const upload = await client().createUploadUrl({ filename: "big-parts.xlsx", sizeBytes: BigInt(SIZE), sha256 });
        expect(upload.partCount).toBeGreaterThan(1);
        const chunks = [...Array(SIZE / MiB).keys()];
        const etags: { partNumber: number; etag: string }[] = [];
        const queue = [...upload.parts];
        const worker = async () => {
          for (let part = queue.shift(); part; part = queue.shift()) {
            const first = Number(part.offset) / MiB;
            const count = Number(part.sizeBytes) / MiB;
            const body = Buffer.concat(chunks.slice(first, first + count).map((i) => stamped(seed, i)));
            const res = await fetch(part.url, { method: "PUT", body });
            expect(res.status).toBe(200);
            etags.push({ partNumber: part.partNumber, etag: res.headers.get("etag")! });
          }
        };
        await Promise.all([worker(), worker(), worker()]);
        const { file } = await client().completeUpload({ fileId: upload.fileId, parts: etags });
        expect(file).toMatchObject({ status: FileStatus.UPLOADED, sizeBytes: BigInt(SIZE), sha256 });
      });
      process.stderr.write(`[${target.name}] 500 MiB presigned multipart upload: service RSS growth ${(growth / MiB).toFixed(1)} MiB\n`);
      expect(growth).toBeLessThan(RSS_BUDGET);
    }, 300_000);

    it("never marks a file cut off by kill -9 as uploaded, and cleanup removes its debris", async () => {
      const form = formStream("killed.xlsx", generated(SIZE, seed), { owner_id: "killed" }, (sent) => {
        if (sent >= 64 * MiB && service.child.exitCode === null) service.child.kill("SIGKILL");
      });
      await fetch(`${service.url}/api/v1/storage/files/upload`, { method: "POST", body: form.body, headers: { "content-type": form.contentType }, duplex: "half" } as RequestInit).catch(() => undefined);
      await service.stop("SIGKILL");
      // what the local store was writing ages past its sweep delay (an hour), as if the restart came later
      const tmp = path.join(dataDir, "objects", "tmp");
      const local = target.name === "local";
      const old = new Date(Date.now() - 2 * 3600_000);
      if (local) for (const name of readdirSync(tmp)) utimesSync(path.join(tmp, name), old, old);
      // and the pending row past the abandoned-upload delay
      const db = new Database(path.join(dataDir, "persistence.db"));
      db.prepare("UPDATE file_metadata SET created_at = created_at - 7200000000 WHERE owner_id = 'killed'").run();
      db.close();

      service = await startServiceProcess(env);
      const pending = await client().listFiles({ ownerId: "killed" });
      expect(pending.items.map((f) => f.status)).toEqual([FileStatus.PENDING_UPLOAD]);
      const cleaned = await client().cleanupFiles({ abandonedHours: 1 });
      expect(cleaned.abandonedUploads).toBe(1);
      expect((await client().listFiles({ ownerId: "killed" })).total).toBe(0);
      if (local) expect(readdirSync(tmp)).toEqual([]);
      // on S3 the streamed put's own multipart upload was left open by the kill: cleanup aborted it
      else expect(cleaned.abortedMultipartUploads).toBe(1);
      const store = await openObjectStore({ url: env.PERSISTENCE_S3_URL, dir: path.join(dataDir, "objects"), secret: randomBytes(32) });
      try {
        expect(await store.listMultipartUploads({ prefix: "files/" })).toEqual([]);
        const keys = [];
        for (let page = await store.list({ prefix: "files/" }); ; page = await store.list({ prefix: "files/", cursor: page.nextCursor! })) {
          keys.push(...page.items.map((i) => i.key));
          if (!page.nextCursor) break;
        }
        expect(keys).toHaveLength(3); // the warm-up and the two 500 MB files, nothing of the killed one
      } finally {
        await store.close();
      }
    }, 300_000);
  });
}

function stamped(seed: Buffer, i: number): Buffer {
  const chunk = Buffer.from(seed);
  chunk.writeUInt32BE(i, 0);
  return chunk;
}
