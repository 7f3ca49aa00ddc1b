"use strict";
// Files (SPEC §4) against the real S3-compatible server (Swift + s3api): presign latency through the
// service beside the raw minio presign call, upload throughput through the service beside a direct
// minio putObject of the same stream, and the service's peak RSS growth during a 500 MB upload.
const { spawnSync } = require("node:child_process");
const { randomBytes } = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");
const { Readable } = require("node:stream");
const Minio = require("minio");
const { createClient } = require("@connectrpc/connect");
const { createConnectTransport } = require("@connectrpc/connect-node");
const { ROOT, startService } = require("../lib/service");
const { quantiles } = require("../lib/stats");

const { StorageService } = require(path.join(ROOT, "dist/gen/persistence/v1/storage_pb.js"));
const MiB = 1024 * 1024;

/** TEST_S3_URL, or the project's Swift server (started when down). */
function s3Url() {
  if (process.env.TEST_S3_URL) return process.env.TEST_S3_URL;
  const run = spawnSync("bash", [path.join(ROOT, "scripts/s3-server.sh"), "start"], { encoding: "utf8" });
  const url = run.stdout.trim().split("\n").pop();
  if (run.status !== 0 || !url) throw new Error(`no S3 server: ${run.stderr}`);
  return url;
}

function withBucket(url, bucket) {
  const u = new URL(url);
  u.pathname = `/${bucket}`;
  return u.toString();
}

function minioOf(url, partSize) {
  const u = new URL(url);
  return {
    client: new Minio.Client({
      endPoint: u.hostname,
      port: Number(u.port),
      useSSL: u.protocol === "https:",
      accessKey: decodeURIComponent(u.username),
      secretKey: decodeURIComponent(u.password),
      region: u.searchParams.get("region") ?? "us-east-1",
      pathStyle: true,
      ...(partSize ? { partSize } : {}),
    }),
    bucket: u.pathname.slice(1),
  };
}

/** `size` bytes of one random MiB repeated, as a stream of 1 MiB chunks. */
function generated(size, seed) {
  return Readable.from((function* () {
    for (let offset = 0; offset < size; offset += MiB) yield seed.subarray(0, Math.min(MiB, size - offset));
  })(), { objectMode: false });
}

function formBody(size, seed) {
  const boundary = `----bench${randomBytes(6).toString("hex")}`;
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="bench.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`);
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const body = Readable.from((async function* () {
    yield head;
    yield* generated(size, seed);
    yield tail;
  })());
  return { body: Readable.toWeb(body), contentType: `multipart/form-data; boundary=${boundary}` };
}

function rssOf(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)[1]) * 1024;
}

async function timed(n, fn) {
  const samples = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn(i);
    samples.push(performance.now() - t);
  }
  return quantiles(samples, [0.5, 0.95, 0.99]);
}

async function uploadThroughService(url, size, seed) {
  const form = formBody(size, seed);
  const started = performance.now();
  const res = await fetch(`${url}/api/v1/storage/files/upload`, { method: "POST", body: form.body, headers: { "content-type": form.contentType }, duplex: "half" });
  const json = await res.json();
  if (res.status !== 201) throw new Error(`upload answered ${res.status}: ${JSON.stringify(json)}`);
  return { seconds: (performance.now() - started) / 1000, fileId: json.file.file_id };
}

/** The files figures: presign p95s (service vs raw minio), upload MB/s (service vs minio putObject), peak RSS growth of a 500 MB upload. */
async function filesBench({ calls = 300, throughputBytes = 256 * MiB, largeBytes = 500 * MiB } = {}) {
  const base = s3Url();
  const bucket = `bench-files-${randomBytes(4).toString("hex")}`;
  const url = withBucket(base, bucket);
  const service = await startService({ PERSISTENCE_S3_URL: url, PERSISTENCE_FILES_CLEANUP_INTERVAL_MS: "0" });
  const { client: minio } = minioOf(url);
  // the same parts the service's S3 store cuts streams into (8 MiB, bounded memory)
  const { client: minio8 } = minioOf(url, 8 * MiB);
  const seed = randomBytes(MiB);
  try {
    const storage = createClient(StorageService, createConnectTransport({ baseUrl: service.url, httpVersion: "1.1" }));
    // warm-up: JIT, connections, a put in several parts
    await uploadThroughService(service.url, 32 * MiB, seed);
    await minio.putObject(bucket, "warm", generated(32 * MiB, seed), 32 * MiB);
    const { fileId } = await uploadThroughService(service.url, MiB, seed);
    for (let i = 0; i < 50; i++) {
      await storage.createUploadUrl({ filename: "w.bin", sizeBytes: BigInt(MiB) });
      await storage.getDownloadUrl({ fileId });
      await minio.presignedPutObject(bucket, `w${i}`, 900);
    }

    const createUploadUrl = await timed(calls, (i) => storage.createUploadUrl({ filename: `f${i}.xlsx`, sizeBytes: BigInt(MiB), contentType: "application/vnd.ms-excel" }));
    const rawPut = await timed(calls, (i) => minio.presignedPutObject(bucket, `files/raw${i}`, 900));
    const getDownloadUrl = await timed(calls, () => storage.getDownloadUrl({ fileId }));
    const rawGet = await timed(calls, () => minio.presignedGetObject(bucket, "warm", 900, { "response-content-disposition": 'attachment; filename="warm.bin"' }));

    const direct = [];
    const direct8 = [];
    const through = [];
    for (let round = 0; round < 2; round++) {
      let t = performance.now();
      await minio.putObject(bucket, `direct${round}`, generated(throughputBytes, seed), throughputBytes);
      direct.push(throughputBytes / MiB / ((performance.now() - t) / 1000));
      t = performance.now();
      await minio8.putObject(bucket, `direct8-${round}`, generated(throughputBytes, seed), throughputBytes);
      direct8.push(throughputBytes / MiB / ((performance.now() - t) / 1000));
      through.push(throughputBytes / MiB / (await uploadThroughService(service.url, throughputBytes, seed)).seconds);
    }

    const before = rssOf(service.pid);
    let peak = before;
    const timer = setInterval(() => (peak = Math.max(peak, rssOf(service.pid))), 50);
    await uploadThroughService(service.url, largeBytes, seed);
    clearInterval(timer);
    peak = Math.max(peak, rssOf(service.pid));

    return {
      s3_url: base.replace(/\/\/[^@]*@/, "//"),
      calls,
      create_upload_url_ms: createUploadUrl,
      raw_presigned_put_ms: rawPut,
      get_download_url_ms: getDownloadUrl,
      raw_presigned_get_ms: rawGet,
      upload_mb_s: {
        through_service: Math.max(...through),
        direct_put_object: Math.max(...direct),
        direct_put_object_8mib_parts: Math.max(...direct8),
        runs: { through, direct, direct8 },
      },
      throughput_bytes: throughputBytes,
      large_upload: { bytes: largeBytes, rss_before: before, rss_peak: peak, growth: peak - before },
    };
  } finally {
    await service.stop();
  }
}

module.exports = { filesBench };
