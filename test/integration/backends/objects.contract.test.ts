import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import type { Readable } from "node:stream";
import v8 from "node:v8";
import vm from "node:vm";
import { Code, ConnectError } from "@connectrpc/connect";
import { openLocalDirectoryStore } from "../../../server/backends/objects/local-directory";
import { LOCAL_PRESIGNED_PATH, serveLocalPresigned } from "../../../server/backends/objects/object-http";
import { MIN_PART_BYTES, type ObjectStore } from "../../../server/backends/objects/object-store";
import { openS3ObjectStore } from "../../../server/backends/objects/s3";
import { parseS3Url } from "../../../server/backends/objects/s3-url";
import { restError } from "../../../server/http/rest/rest-errors";
import { describeEachBackend, type BackendCase } from "../../support/backends";
import { errorOf } from "../../support/errors";
import { s3ServerUrl, withOwnBucket } from "../../support/s3-server";

const MiB = 1024 * 1024;

/** The local store, its presigned URLs served by a loopback HTTP server through serveLocalPresigned (as the service's route does). */
function localCase(): BackendCase<ObjectStore> {
  const opened = new Map<ObjectStore, { dir: string; server: http.Server }>();
  return {
    name: "local",
    async open() {
      const dir = mkdtempSync(path.join(os.tmpdir(), "persistence-objects-"));
      let serve: ((token: string, req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>) | undefined;
      const server = http.createServer((req, res) => {
        const url = new URL(req.url ?? "/", "http://local");
        const token = url.pathname.startsWith(`${LOCAL_PRESIGNED_PATH}/`) ? url.pathname.slice(LOCAL_PRESIGNED_PATH.length + 1) : undefined;
        if (token === undefined || serve === undefined) {
          res.writeHead(404).end();
          return;
        }
        serve(token, req, res).catch((err: unknown) => {
          const reply = restError(ConnectError.from(err), "test");
          if (res.headersSent) return void res.destroy();
          res.writeHead(reply.status, { "content-type": "application/json", connection: "close", ...reply.headers });
          res.end(JSON.stringify(reply.body));
        });
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      const { port } = server.address() as AddressInfo;
      const store = await openLocalDirectoryStore({ dir, secret: randomBytes(32), presignBaseUrl: `http://127.0.0.1:${port}${LOCAL_PRESIGNED_PATH}` });
      serve = (token, req, res) => serveLocalPresigned(store, token, req, res);
      opened.set(store, { dir, server });
      return store;
    },
    async close(store) {
      await store.close();
      const { dir, server } = opened.get(store)!;
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Swift's s3api on loopback, a bucket of its own per run; 5 MiB parts so a 20 MiB stream goes in four. */
function s3Case(): BackendCase<ObjectStore> {
  const server = s3ServerUrl();
  return {
    name: "s3",
    ...("skip" in server ? { skip: server.skip } : {}),
    async open() {
      if ("skip" in server) throw new Error(server.skip);
      return openS3ObjectStore(parseS3Url(withOwnBucket(server.url, "objects")), { partSize: 5 * MiB });
    },
    async close(store) {
      for (const upload of await store.listMultipartUploads()) await store.abortMultipartUpload(upload.key, upload.uploadId);
      for (let page = await store.list(); ; page = await store.list({ cursor: page.nextCursor! })) {
        await store.deleteMany(page.items.map((i) => i.key));
        if (!page.nextCursor) break;
      }
      await store.close();
    },
  };
}

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const sha256 = (data: Uint8Array): string => createHash("sha256").update(data).digest("hex");

/** A full garbage collection, so a sample of live memory is not inflated by buffers already dropped. */
v8.setFlagsFromString("--expose-gc");
const collectGarbage = vm.runInNewContext("gc") as () => void;
const liveBuffers = async (): Promise<number> => {
  collectGarbage();
  // V8 frees the memory of collected buffers after the collection, off the main thread: let it
  await new Promise((resolve) => setTimeout(resolve, 5));
  collectGarbage();
  return process.memoryUsage().arrayBuffers;
};

/** `size` pseudo-random bytes in 64 KiB chunks, made as they are pulled; records the most buffer memory alive while it is read. */
function generatedBody(size: number) {
  const probe = { sha256: "", peakGrowth: 0 };
  async function* body(): AsyncGenerator<Uint8Array> {
    const baseline = await liveBuffers();
    const hash = createHash("sha256");
    const seed = randomBytes(64 * 1024);
    for (let sent = 0, n = 0; sent < size; n++) {
      const chunk = Buffer.from(seed.subarray(0, Math.min(seed.length, size - sent)));
      chunk.writeUInt32BE(n, 0);
      hash.update(chunk);
      sent += chunk.length;
      if (n % 32 === 0) probe.peakGrowth = Math.max(probe.peakGrowth, (await liveBuffers()) - baseline);
      yield chunk;
    }
    probe.sha256 = hash.digest("hex");
  }
  return { body: body(), probe };
}

/** The same URL with one character of its signature changed. */
function tampered(url: string): string {
  const u = new URL(url);
  const signature = u.searchParams.get("X-Amz-Signature");
  if (signature) {
    u.searchParams.set("X-Amz-Signature", (signature[0] === "0" ? "1" : "0") + signature.slice(1));
    return u.toString();
  }
  // the local token is <grant>.<mac>: change the mac's first character (its last one carries padding bits)
  const dot = u.pathname.lastIndexOf(".");
  const first = u.pathname[dot + 1];
  u.pathname = u.pathname.slice(0, dot + 1) + (first === "A" ? "B" : "A") + u.pathname.slice(dot + 2);
  return u.toString();
}

/** The signature of URL `signed` carried over to URL `other` (made for another key). */
function signatureMovedTo(signed: string, other: string): string {
  const a = new URL(signed);
  const b = new URL(other);
  if (a.searchParams.has("X-Amz-Signature")) {
    b.searchParams.set("X-Amz-Signature", a.searchParams.get("X-Amz-Signature")!);
    return b.toString();
  }
  const [payload] = b.pathname.split("/").pop()!.split(".");
  const [, mac] = a.pathname.split("/").pop()!.split(".");
  b.pathname = b.pathname.replace(/[^/]+$/, `${payload}.${mac}`);
  return b.toString();
}

async function expectCode(call: Promise<unknown>, code: Code): Promise<ConnectError> {
  const err = await errorOf(call);
  expect(Code[err.code]).toBe(Code[code]);
  return err;
}

describeEachBackend("objects", [localCase(), s3Case()], (store) => {
  it("answers ping", async () => {
    await expect(store().ping()).resolves.toBeUndefined();
  });

  it("stores a buffer and reads it back with its size, content type, metadata, etag and SHA-256", async () => {
    const data = Buffer.from("spreadsheet bytes \u4e2d\u6587 " + randomBytes(8).toString("hex"));
    const stored = await store().put("round/trip.xlsx", data, { contentType: "application/vnd.ms-excel", metadata: { owner: "u-1", "file-id": "f-9" } });
    expect(stored).toMatchObject({ key: "round/trip.xlsx", size: data.length, sha256: sha256(data) });
    expect(stored.etag).not.toBe("");

    const info = await store().stat("round/trip.xlsx");
    expect(info).toMatchObject({
      key: "round/trip.xlsx",
      size: data.length,
      etag: stored.etag,
      contentType: "application/vnd.ms-excel",
      metadata: { owner: "u-1", "file-id": "f-9" },
      sha256: sha256(data),
    });
    expect(Math.abs(info.lastModified.getTime() - Date.now())).toBeLessThan(120_000);

    const read = await store().get("round/trip.xlsx");
    expect(read.info).toMatchObject({ size: data.length, etag: stored.etag, contentType: "application/vnd.ms-excel" });
    expect(read.range).toBeUndefined();
    expect((await readAll(read.body)).equals(data)).toBe(true);
  });

  it("replaces an object whole, and stores an empty one", async () => {
    await store().put("replace/me", Buffer.from("first version, longer"));
    await store().put("replace/me", Buffer.from("second"), { contentType: "text/plain" });
    const read = await store().get("replace/me");
    expect((await readAll(read.body)).toString()).toBe("second");
    expect(read.info).toMatchObject({ size: 6, contentType: "text/plain", metadata: {} });

    const empty = await store().put("replace/empty", Buffer.alloc(0));
    expect(empty).toMatchObject({ size: 0, sha256: sha256(Buffer.alloc(0)) });
    expect((await readAll((await store().get("replace/empty")).body)).length).toBe(0);
    expect((await store().stat("replace/empty")).contentType).toBe("application/octet-stream");
  });

  it("streams a 20 MiB body of unknown length in and out intact without holding it in memory", async () => {
    const size = 20 * MiB;
    const { body, probe } = generatedBody(size);
    const stored = await store().put("big/stream.bin", body, { contentType: "application/octet-stream" });
    expect(stored.size).toBe(size);
    expect(stored.sha256).toBe(probe.sha256);
    // the whole body alive at once would be 20 MiB; the S3 store holds two 5 MiB parts, the local one a chunk
    expect(probe.peakGrowth).toBeLessThan(16 * MiB);

    const info = await store().stat("big/stream.bin");
    expect(info.size).toBe(size);
    if (info.sha256 !== undefined) expect(info.sha256).toBe(probe.sha256);

    const read = await store().get("big/stream.bin");
    const hash = createHash("sha256");
    let received = 0;
    let peak = 0;
    const baseline = await liveBuffers();
    let n = 0;
    for await (const chunk of read.body) {
      hash.update(chunk as Buffer);
      received += (chunk as Buffer).length;
      if (n++ % 32 === 0) peak = Math.max(peak, (await liveBuffers()) - baseline);
    }
    expect(received).toBe(size);
    expect(hash.digest("hex")).toBe(probe.sha256);
    expect(peak).toBeLessThan(16 * MiB);
  });

  it("keeps the SHA-256 of a multipart-sized stream when the caller states it", async () => {
    const data = randomBytes(11 * MiB);
    const stored = await store().put("big/stated.bin", (async function* () {
      for (let i = 0; i < data.length; i += MiB) yield data.subarray(i, i + MiB);
    })(), { expectedSha256: sha256(data), expectedSize: data.length });
    expect(stored.sha256).toBe(sha256(data));
    expect((await store().stat("big/stated.bin")).sha256).toBe(sha256(data));
  });

  it("refuses a body that is not the size or SHA-256 declared, or is over the limit, and keeps the old object", async () => {
    const original = Buffer.from("the original content");
    await store().put("verify/object", original);
    const wrong = sha256(Buffer.from("something else"));

    const badSum = await expectCode(store().put("verify/object", Buffer.from("new content"), { expectedSha256: wrong }), Code.FailedPrecondition);
    expect(badSum.rawMessage).toMatch(/SHA-256/);
    await expectCode(store().put("verify/object", Buffer.from("new content"), { expectedSize: 3 }), Code.FailedPrecondition);
    await expectCode(store().put("verify/object", Buffer.from("new content"), { expectedSize: 300 }), Code.FailedPrecondition);
    await expectCode(store().put("verify/object", Buffer.from("new content"), { maxBytes: 5 }), Code.ResourceExhausted);

    // a stream long enough to go up in parts, refused at its end: no object and no upload left
    const big = randomBytes(12 * MiB);
    const chunks = async function* () {
      for (let i = 0; i < big.length; i += MiB) yield big.subarray(i, i + MiB);
    };
    await expectCode(store().put("verify/big", chunks(), { expectedSha256: wrong }), Code.FailedPrecondition);
    await expectCode(store().put("verify/big", chunks(), { maxBytes: 7 * MiB }), Code.ResourceExhausted);
    await expectCode(store().stat("verify/big"), Code.NotFound);
    expect(await store().listMultipartUploads({ prefix: "verify/" })).toEqual([]);

    expect((await readAll((await store().get("verify/object")).body)).equals(original)).toBe(true);
  });

  it("reads byte ranges, clamping the end, and refuses ranges past the end", async () => {
    const data = randomBytes(1000);
    await store().put("range/object", data);

    const middle = await store().get("range/object", { range: { start: 10, end: 19 } });
    expect(middle.range).toEqual({ start: 10, end: 19 });
    expect(middle.info.size).toBe(1000);
    expect((await readAll(middle.body)).equals(data.subarray(10, 20))).toBe(true);

    const tail = await store().get("range/object", { range: { start: 990 } });
    expect(tail.range).toEqual({ start: 990, end: 999 });
    expect((await readAll(tail.body)).equals(data.subarray(990))).toBe(true);

    const clamped = await store().get("range/object", { range: { start: 995, end: 5000 } });
    expect(clamped.range).toEqual({ start: 995, end: 999 });
    expect((await readAll(clamped.body)).equals(data.subarray(995))).toBe(true);

    const whole = await store().get("range/object", { range: { start: 0 } });
    expect(whole.range).toEqual({ start: 0, end: 999 });
    expect((await readAll(whole.body)).equals(data)).toBe(true);

    await expectCode(store().get("range/object", { range: { start: 1000 } }), Code.OutOfRange);
    await expectCode(store().get("range/object", { range: { start: 20, end: 10 } }), Code.InvalidArgument);
    await expectCode(store().get("range/object", { range: { start: -1 } }), Code.InvalidArgument);
  });

  it("answers NOT_FOUND for a missing object, and deleting one is fine", async () => {
    const missing = await expectCode(store().get("missing/object"), Code.NotFound);
    expect(missing.rawMessage).toContain("missing/object");
    await expectCode(store().stat("missing/object"), Code.NotFound);
    await expectCode(store().get("missing/object", { range: { start: 0, end: 3 } }), Code.NotFound);
    await expectCode(store().copy("missing/object", "missing/copy"), Code.NotFound);
    await expect(store().delete("missing/object")).resolves.toBeUndefined();
  });

  it("deletes idempotently, one key or many", async () => {
    for (const k of ["del/a", "del/b", "del/c", "del/keep"]) await store().put(k, Buffer.from(k));
    await store().delete("del/a");
    await store().delete("del/a");
    await expectCode(store().stat("del/a"), Code.NotFound);
    await store().deleteMany(["del/b", "del/c", "del/never-existed"]);
    await store().deleteMany([]);
    expect((await store().list({ prefix: "del/" })).items.map((i) => i.key)).toEqual(["del/keep"]);
  });

  it("lists by prefix in byte order of the keys, page by page with a cursor", async () => {
    const keys = ["ls/a", "ls/a/b", "ls/a-b", "ls/a/c/d", "ls/b", "ls/%41", "ls/\u00e9t\u00e9", "ls/\u4e2d\u6587.xlsx", "ls/Z", "ls/a0"];
    for (const k of keys) await store().put(k, Buffer.from(k));
    await store().put("lsx/outside", Buffer.from("x"));
    await store().put("l", Buffer.from("x"));
    const expected = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));

    const all = await store().list({ prefix: "ls/" });
    expect(all.items.map((i) => i.key)).toEqual(expected);
    expect(all.nextCursor).toBeUndefined();
    const first = all.items.find((i) => i.key === "ls/a/b")!;
    expect(first).toMatchObject({ size: Buffer.byteLength("ls/a/b") });
    expect(first.etag).toBe((await store().stat("ls/a/b")).etag);
    expect(first.lastModified).toBeInstanceOf(Date);

    const paged: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await store().list({ prefix: "ls/", limit: 3, ...(cursor ? { cursor } : {}) });
      expect(page.items.length).toBeLessThanOrEqual(3);
      paged.push(...page.items.map((i) => i.key));
      cursor = page.nextCursor;
      pages++;
    } while (cursor && pages < 10);
    expect(paged).toEqual(expected);
    expect(pages).toBe(Math.ceil(expected.length / 3));

    expect((await store().list({ prefix: "ls/a/" })).items.map((i) => i.key)).toEqual(["ls/a/b", "ls/a/c/d"]);
    expect((await store().list({ prefix: "ls/nothing-here" })).items).toEqual([]);
    await expectCode(store().list({ prefix: "ls/", cursor: "%%%" }), Code.InvalidArgument);
    await expectCode(store().list({ limit: 0 }), Code.InvalidArgument);
  });

  it("refuses keys that are not clean relative paths", async () => {
    for (const key of ["", "/etc/passwd", "../escape", "a/../../escape", "a//b", "a/", "a/./b", "nul\u0000byte", "line\nbreak", "x".repeat(1025)]) {
      await expectCode(store().put(key, Buffer.from("x")), Code.InvalidArgument);
      await expectCode(store().get(key), Code.InvalidArgument);
      await expectCode(store().delete(key), Code.InvalidArgument);
      await expectCode(store().presignPut(key), Code.InvalidArgument);
    }
    await expectCode(store().put("ok/key", Buffer.from("x"), { metadata: { "Bad Name": "v" } }), Code.InvalidArgument);
    await expectCode(store().put("ok/key", Buffer.from("x"), { metadata: { sha256: "v" } }), Code.InvalidArgument);
    await expectCode(store().put("ok/key", Buffer.from("x"), { metadata: { name: "\u4e2d" } }), Code.InvalidArgument);
    await expectCode(store().stat("ok/key"), Code.NotFound);
  });

  it("copies an object with its content type and metadata", async () => {
    const data = randomBytes(4096);
    await store().put("copy/source", data, { contentType: "text/csv", metadata: { origin: "upload" } });
    const copied = await store().copy("copy/source", "copy/target");
    expect(copied).toMatchObject({ key: "copy/target", size: 4096, contentType: "text/csv", metadata: { origin: "upload" } });
    expect((await readAll((await store().get("copy/target")).body)).equals(data)).toBe(true);
    await store().put("copy/source", Buffer.from("changed"));
    expect((await readAll((await store().get("copy/target")).body)).equals(data)).toBe(true);
  });

  it("lets a presigned PUT upload and a presigned GET download, with the signed Content-Disposition and Range", async () => {
    const data = randomBytes(300_000);
    const put = await store().presignPut("presigned/报告 (1).xlsx", { expiresInSeconds: 600 });
    expect(put.method).toBe("PUT");
    expect(put.expiresAt.getTime() - Date.now()).toBeGreaterThan(590_000);
    expect(put.expiresAt.getTime() - Date.now()).toBeLessThanOrEqual(601_000);
    const uploaded = await fetch(put.url, { method: "PUT", body: data, headers: { "content-type": "application/vnd.ms-excel" } });
    expect(uploaded.status).toBe(200);
    expect(uploaded.headers.get("etag")).toMatch(/^"[^"]+"$/);
    const info = await store().stat("presigned/报告 (1).xlsx");
    expect(info).toMatchObject({ size: data.length, contentType: "application/vnd.ms-excel", etag: uploaded.headers.get("etag")!.replace(/"/g, "") });

    const disposition = "attachment; filename=\"report.xlsx\"; filename*=UTF-8''%E6%8A%A5%E5%91%8A.xlsx";
    const get = await store().presignGet("presigned/报告 (1).xlsx", { contentDisposition: disposition });
    expect(get.method).toBe("GET");
    const downloaded = await fetch(get.url);
    expect(downloaded.status).toBe(200);
    expect(downloaded.headers.get("content-disposition")).toBe(disposition);
    expect(downloaded.headers.get("content-type")).toBe("application/vnd.ms-excel");
    expect(Buffer.from(await downloaded.arrayBuffer()).equals(data)).toBe(true);

    const partial = await fetch(get.url, { headers: { range: "bytes=100-199" } });
    expect(partial.status).toBe(206);
    expect(partial.headers.get("content-range")).toBe(`bytes 100-199/${data.length}`);
    expect(Buffer.from(await partial.arrayBuffer()).equals(data.subarray(100, 200))).toBe(true);

    const beyond = await fetch(get.url, { headers: { range: `bytes=${data.length}-` } });
    expect(beyond.status).toBe(416);
    await beyond.arrayBuffer();
  });

  it("refuses tampered, re-targeted, wrong-method and expired presigned URLs with 403, storing nothing", async () => {
    await store().put("guarded/existing", Buffer.from("guarded"));
    const put = await store().presignPut("guarded/new");
    const otherPut = await store().presignPut("guarded/other");
    const get = await store().presignGet("guarded/existing");
    const otherGet = await store().presignGet("guarded/missing-but-signed");

    const statusOf = async (url: string, init?: RequestInit): Promise<number> => {
      const res = await fetch(url, init);
      await res.arrayBuffer();
      return res.status;
    };
    expect(await statusOf(tampered(put.url), { method: "PUT", body: "forged" })).toBe(403);
    expect(await statusOf(signatureMovedTo(otherPut.url, put.url), { method: "PUT", body: "forged" })).toBe(403);
    expect(await statusOf(tampered(get.url))).toBe(403);
    expect(await statusOf(signatureMovedTo(otherGet.url, get.url))).toBe(403);
    expect(await statusOf(put.url)).toBe(403); // a PUT URL used to GET
    expect(await statusOf(get.url, { method: "PUT", body: "forged" })).toBe(403); // a GET URL used to PUT

    const shortPut = await store().presignPut("guarded/late", { expiresInSeconds: 1 });
    const shortGet = await store().presignGet("guarded/existing", { expiresInSeconds: 1 });
    await new Promise((resolve) => setTimeout(resolve, 2100));
    expect(await statusOf(shortPut.url, { method: "PUT", body: "late" })).toBe(403);
    expect(await statusOf(shortGet.url)).toBe(403);

    for (const key of ["guarded/new", "guarded/late"]) await expectCode(store().stat(key), Code.NotFound);
    expect((await readAll((await store().get("guarded/existing")).body)).toString()).toBe("guarded");
    expect(await statusOf(get.url)).toBe(200); // the genuine URL still works
  });

  it("refuses presigned expiries outside 1 s to 7 days", async () => {
    await expectCode(store().presignPut("expiry/key", { expiresInSeconds: 0 }), Code.InvalidArgument);
    await expectCode(store().presignGet("expiry/key", { expiresInSeconds: 7 * 24 * 3600 + 1 }), Code.InvalidArgument);
    const longest = await store().presignGet("expiry/key", { expiresInSeconds: 7 * 24 * 3600 });
    expect(longest.expiresAt.getTime()).toBeGreaterThan(Date.now() + 7 * 24 * 3600_000 - 60_000);
    const byDefault = await store().presignPut("expiry/key");
    expect(Math.round((byDefault.expiresAt.getTime() - Date.now()) / 60_000)).toBe(15);
  });

  it("completes a multipart upload whose parts were PUT in parallel to presigned part URLs", async () => {
    const parts = [randomBytes(MIN_PART_BYTES), randomBytes(MIN_PART_BYTES + 123), randomBytes(777_777)];
    const whole = Buffer.concat(parts);
    const uploadId = await store().createMultipartUpload("multipart/big.xlsx", { contentType: "application/vnd.ms-excel", metadata: { owner: "u-2" } });

    const listed = await store().listMultipartUploads({ prefix: "multipart/" });
    expect(listed.map((u) => [u.key, u.uploadId])).toContainEqual(["multipart/big.xlsx", uploadId]);
    expect(listed.find((u) => u.uploadId === uploadId)!.initiated).toBeInstanceOf(Date);
    await expectCode(store().stat("multipart/big.xlsx"), Code.NotFound);

    const etags = await Promise.all(
      parts.map(async (data, i) => {
        const url = await store().presignUploadPart("multipart/big.xlsx", uploadId, i + 1);
        expect(url.method).toBe("PUT");
        const res = await fetch(url.url, { method: "PUT", body: data });
        await res.arrayBuffer();
        expect(res.status).toBe(200);
        return { partNumber: i + 1, etag: res.headers.get("etag")! };
      }),
    );
    // a part uploaded again replaces the first attempt
    const retried = randomBytes(MIN_PART_BYTES);
    const again = await fetch((await store().presignUploadPart("multipart/big.xlsx", uploadId, 1)).url, { method: "PUT", body: retried });
    await again.arrayBuffer();
    etags[0] = { partNumber: 1, etag: again.headers.get("etag")! };
    const expected = Buffer.concat([retried, parts[1]!, parts[2]!]);

    const info = await store().completeMultipartUpload("multipart/big.xlsx", uploadId, etags);
    expect(info).toMatchObject({ key: "multipart/big.xlsx", size: expected.length, contentType: "application/vnd.ms-excel", metadata: { owner: "u-2" } });
    if (info.sha256 !== undefined) expect(info.sha256).toBe(sha256(expected));
    const back = await readAll((await store().get("multipart/big.xlsx")).body);
    expect(back.length).toBe(expected.length);
    expect(sha256(back)).toBe(sha256(expected));
    expect(sha256(back)).not.toBe(sha256(whole));

    expect((await store().listMultipartUploads({ prefix: "multipart/" })).map((u) => u.uploadId)).not.toContain(uploadId);
  });

  it("refuses to complete with a wrong etag, parts out of order, a small middle part or an unknown upload", async () => {
    const key = "multipart/refused.bin";
    const uploadId = await store().createMultipartUpload(key);
    const put = async (partNumber: number, data: Buffer): Promise<string> => {
      const res = await fetch((await store().presignUploadPart(key, uploadId, partNumber)).url, { method: "PUT", body: data });
      await res.arrayBuffer();
      expect(res.status).toBe(200);
      return res.headers.get("etag")!;
    };
    const small = await put(1, randomBytes(1024));
    const last = await put(2, randomBytes(1024));
    await expectCode(store().completeMultipartUpload(key, uploadId, [{ partNumber: 1, etag: small }, { partNumber: 2, etag: last }]), Code.FailedPrecondition);
    const big = await put(1, randomBytes(MIN_PART_BYTES));
    await expectCode(store().completeMultipartUpload(key, uploadId, [{ partNumber: 1, etag: small }, { partNumber: 2, etag: last }]), Code.FailedPrecondition);
    await expectCode(store().completeMultipartUpload(key, uploadId, [{ partNumber: 2, etag: last }, { partNumber: 1, etag: big }]), Code.FailedPrecondition);
    await expectCode(store().completeMultipartUpload(key, uploadId, []), Code.InvalidArgument);
    await expectCode(store().stat(key), Code.NotFound);

    const info = await store().completeMultipartUpload(key, uploadId, [{ partNumber: 1, etag: big }, { partNumber: 2, etag: last }]);
    expect(info.size).toBe(MIN_PART_BYTES + 1024);

    const unknown = "0123456789abcdef0123456789abcdef";
    await expectCode(store().completeMultipartUpload(key, unknown, [{ partNumber: 1, etag: big }]), Code.NotFound);
  });

  it("takes an abort of an upload another caller has just completed as done, and keeps the object the upload made", async () => {
    // (cleanup on one instance aborting what it listed as incomplete, while another instance completes it)
    const key = "multipart/finished.bin";
    const uploadId = await store().createMultipartUpload(key);
    const data = randomBytes(2048);
    const res = await fetch((await store().presignUploadPart(key, uploadId, 1)).url, { method: "PUT", body: data });
    await res.arrayBuffer();
    expect(res.status).toBe(200);
    await store().completeMultipartUpload(key, uploadId, [{ partNumber: 1, etag: res.headers.get("etag")! }]);
    await store().abortMultipartUpload(key, uploadId);
    await store().abortMultipartUpload(key, uploadId);
    expect(sha256(await readAll((await store().get(key)).body))).toBe(sha256(data));
    expect((await store().listMultipartUploads({ prefix: "multipart/finished" })).length).toBe(0);
  });

  it("aborts uploads idempotently and lists only the incomplete ones under a prefix (spaces and parentheses included)", async () => {
    const a = await store().createMultipartUpload("abort (1)/one/a.bin");
    const b = await store().createMultipartUpload("abort (1)/two");
    const elsewhere = await store().createMultipartUpload("kept/elsewhere");
    const res = await fetch((await store().presignUploadPart("abort (1)/one/a.bin", a, 1)).url, { method: "PUT", body: randomBytes(2048) });
    await res.arrayBuffer();
    expect(res.status).toBe(200);

    const listed = await store().listMultipartUploads({ prefix: "abort (1)/" });
    expect(listed.map((u) => u.uploadId).sort()).toEqual([a, b].sort());
    expect(listed.map((u) => u.key)).toEqual(["abort (1)/one/a.bin", "abort (1)/two"]);
    for (const u of listed) expect(Date.now() - u.initiated.getTime()).toBeLessThan(120_000);

    await store().abortMultipartUpload("abort (1)/one/a.bin", a);
    await store().abortMultipartUpload("abort (1)/one/a.bin", a);
    expect((await store().listMultipartUploads({ prefix: "abort (1)/" })).map((u) => u.uploadId)).toEqual([b]);
    await expectCode(store().completeMultipartUpload("abort (1)/one/a.bin", a, [{ partNumber: 1, etag: "x" }]), Code.NotFound);
    await expectCode(store().stat("abort (1)/one/a.bin"), Code.NotFound);

    await store().abortMultipartUpload("abort (1)/two", b);
    expect(await store().listMultipartUploads({ prefix: "abort (1)/" })).toEqual([]);
    expect((await store().listMultipartUploads()).map((u) => u.uploadId)).toContain(elsewhere);
    await store().abortMultipartUpload("kept/elsewhere", elsewhere);
  });
});
