import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import type { Readable } from "node:stream";
import { Code } from "@connectrpc/connect";
import { isLocalDirectoryStore, openLocalDirectoryStore, type LocalDirectoryStore } from "../../../server/backends/objects/local-directory";
import { LOCAL_PRESIGNED_PATH, serveLocalPresigned } from "../../../server/backends/objects/object-http";
import { openObjectStore } from "../../../server/backends/objects/open-object-store";
import { errorOf } from "../../support/errors";
import { s3ServerUrl, withOwnBucket } from "../../support/s3-server";

const dirs: string[] = [];
function freshDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "persistence-local-objects-"));
  dirs.push(dir);
  return dir;
}
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Every file below `dir`, relative to it. */
function filesBelow(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath ?? (e as unknown as { path: string }).path, e.name)))
    .sort();
}

const secret = randomBytes(32);

describe("local directory object store", () => {
  let dir: string;
  let store: LocalDirectoryStore;
  beforeEach(async () => {
    dir = freshDir();
    store = await openLocalDirectoryStore({ dir, secret, presignBaseUrl: "http://127.0.0.1:1/objects" });
  });

  it("keeps each object in one file below its directory, so 'a' and 'a/b' can both exist", async () => {
    await store.put("a", Buffer.from("parent"));
    await store.put("a/b", Buffer.from("child"));
    await store.put("100%/x", Buffer.from("percent"));
    expect(filesBelow(dir)).toEqual(["objects/100%25/x%", "objects/a%", "objects/a/b%"].map((p) => p.split("/").join(path.sep)).sort());
    expect((await readAll((await store.get("a")).body)).toString()).toBe("parent");
    expect((await readAll((await store.get("a/b")).body)).toString()).toBe("child");
    expect((await store.list()).items.map((i) => i.key)).toEqual(["100%/x", "a", "a/b"]);

    await store.delete("a/b");
    await store.delete("100%/x");
    expect(filesBelow(dir)).toEqual([path.join("objects", "a%")]);
    expect(existsSync(path.join(dir, "objects", "a"))).toBe(false); // emptied folders go too
  });

  it("replaces an object atomically: a reader of the old version reads it whole", async () => {
    const before = randomBytes(2 * 1024 * 1024);
    await store.put("atomic/object", before);
    const reading = await store.get("atomic/object");
    await store.put("atomic/object", Buffer.from("after"));
    expect((await readAll(reading.body)).equals(before)).toBe(true);
    expect((await readAll((await store.get("atomic/object")).body)).toString()).toBe("after");
  });

  it("leaves no temporary file and no object when the body fails half way", async () => {
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield randomBytes(100_000);
      throw new Error("client went away");
    }
    await expect(store.put("broken/upload", failing())).rejects.toThrow("client went away");
    expect((await errorOf(store.stat("broken/upload"))).code).toBe(Code.NotFound);
    expect(readdirSync(path.join(dir, "tmp"))).toEqual([]);
    expect(filesBelow(path.join(dir, "objects"))).toEqual([]);
  });

  it("sweeps what a crash left in tmp/ when it opens, and only that", async () => {
    const stale = path.join(dir, "tmp", "crashed-write");
    const live = path.join(dir, "tmp", "live-write");
    writeFileSync(stale, "half an upload");
    writeFileSync(live, "an upload in progress");
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    utimesSync(stale, twoHoursAgo, twoHoursAgo);
    await openLocalDirectoryStore({ dir, secret });
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(live)).toBe(true);
  });

  it("keeps multipart parts apart from objects until completion, and removes them after", async () => {
    const uploadId = await store.createMultipartUpload("parts/object", { contentType: "text/plain" });
    const part = await store.uploadPart("parts/object", uploadId, 1, Buffer.from("only part"));
    expect(part).toMatchObject({ partNumber: 1, size: 9 });
    expect(filesBelow(path.join(dir, "objects"))).toEqual([]);
    await store.completeMultipartUpload("parts/object", uploadId, [{ partNumber: 1, etag: `"${part.etag}"` }]);
    expect(readdirSync(path.join(dir, "uploads"))).toEqual([]);
    expect((await readAll((await store.get("parts/object")).body)).toString()).toBe("only part");
    expect((await errorOf(store.uploadPart("parts/object", uploadId, 2, Buffer.from("late")))).code).toBe(Code.NotFound);
    expect((await errorOf(store.presignUploadPart("parts/object", uploadId, 2))).code).toBe(Code.NotFound);
    expect((await errorOf(store.uploadPart("other/key", uploadId, 1, Buffer.from("x")))).code).toBe(Code.NotFound);
  });

  it("verifies its presigned tokens: the grant they carry, HEAD where GET is allowed, nothing else", async () => {
    const get = await store.presignGet("grants/report.xlsx", { expiresInSeconds: 60, contentDisposition: "attachment", contentType: "text/csv" });
    expect(get.url.startsWith("http://127.0.0.1:1/objects/")).toBe(true);
    const token = get.url.slice("http://127.0.0.1:1/objects/".length);
    expect(store.verifyPresigned(token, "GET")).toMatchObject({ method: "GET", key: "grants/report.xlsx", contentDisposition: "attachment", contentType: "text/csv" });
    expect(store.verifyPresigned(token, "head").method).toBe("GET");
    expect(Math.abs(store.verifyPresigned(token, "GET").expiresAt.getTime() - get.expiresAt.getTime())).toBe(0);
    for (const [bad, method] of [[token, "PUT"], [token, "DELETE"], [`${token}.x`, "GET"], ["", "GET"], ["no-dot", "GET"], [token.replace(/^./, (c) => (c === "e" ? "f" : "e")), "GET"]] as const) {
      let code: Code | undefined;
      try {
        store.verifyPresigned(bad, method);
      } catch (err) {
        code = (await errorOf(Promise.reject(err))).code;
      }
      expect(code).toBe(Code.PermissionDenied);
    }
    const other = await openLocalDirectoryStore({ dir: freshDir(), secret: randomBytes(32), presignBaseUrl: "http://127.0.0.1:1/objects" });
    expect(() => other.verifyPresigned(token, "GET")).toThrow(/signature/);
  });

  it("serves HEAD on a presigned GET URL with the headers and no body", async () => {
    const server = http.createServer((req, res) => {
      const token = (req.url ?? "").slice(LOCAL_PRESIGNED_PATH.length + 1);
      serveLocalPresigned(served, token, req, res).catch(() => res.writeHead(500).end());
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}${LOCAL_PRESIGNED_PATH}`;
    const served = await openLocalDirectoryStore({ dir: freshDir(), secret, presignBaseUrl: base });
    try {
      await served.put("head/object", randomBytes(1234), { contentType: "image/png" });
      const res = await fetch((await served.presignGet("head/object")).url, { method: "HEAD" });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-length")).toBe("1234");
      expect(res.headers.get("content-type")).toBe("image/png");
      expect(res.headers.get("accept-ranges")).toBe("bytes");
      expect((await res.arrayBuffer()).byteLength).toBe(0);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("needs a long secret, and a base URL to presign", async () => {
    await expect(openLocalDirectoryStore({ dir: freshDir(), secret: "short" })).rejects.toThrow(/at least 32 bytes/);
    const unsigned = await openLocalDirectoryStore({ dir: freshDir(), secret });
    expect((await errorOf(unsigned.presignPut("x"))).code).toBe(Code.FailedPrecondition);
  });
});

describe("openObjectStore", () => {
  it("opens the local directory when no URL is given, its URLs under <public base>/objects/", async () => {
    const store = await openObjectStore({ dir: freshDir(), secret, publicBaseUrl: "https://files.example.com/" });
    expect(store).toMatchObject({ name: "objects", kind: "local" });
    expect(isLocalDirectoryStore(store)).toBe(true);
    expect((await store.presignPut("k")).url).toMatch(/^https:\/\/files\.example\.com\/objects\/[\w-]+\.[\w-]+$/);
    await store.close();
  });

  it("refuses a malformed URL without echoing it", async () => {
    const err = await openObjectStore({ url: "http://key:very-secret@host", dir: freshDir(), secret }).catch((e: unknown) => e as Error);
    expect((err as Error).message).toMatch(/^PERSISTENCE_S3_URL: no bucket/);
    expect((err as Error).message).not.toContain("very-secret");
  });

  it("names the variable and not the secret when the S3 store cannot be reached", async () => {
    const err = await openObjectStore({ url: "http://key:very-secret@127.0.0.1:1/bucket", dir: freshDir(), secret }).catch((e: unknown) => e as Error);
    expect((err as Error).message).toMatch(/^PERSISTENCE_S3_URL: cannot use bucket "bucket" at 127\.0\.0\.1:1/);
    expect((err as Error).message).not.toContain("very-secret");
  });

  const s3 = s3ServerUrl();
  (("url" in s3) ? it : it.skip)(`opens the S3 store when a URL is given${"skip" in s3 ? ` (skipped: ${s3.skip})` : ""}`, async () => {
    if (!("url" in s3)) return;
    const store = await openObjectStore({ url: withOwnBucket(s3.url, "open"), dir: freshDir(), secret });
    expect(store).toMatchObject({ name: "objects", kind: "s3" });
    expect(isLocalDirectoryStore(store)).toBe(false);
    await store.ping();
    const wrong = new URL(s3.url);
    wrong.password = "not-the-secret";
    const refused = await openObjectStore({ url: wrong.toString(), dir: freshDir(), secret }).catch((e: unknown) => e as Error);
    expect((refused as Error).message).toMatch(/^PERSISTENCE_S3_URL: .*refused the credentials/);
    expect((refused as Error).message).not.toContain("not-the-secret");
    await store.close();
  });
});
