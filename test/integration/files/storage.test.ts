import { createHash, randomBytes } from "node:crypto";
import path from "node:path";
import { Code } from "@connectrpc/connect";
import { Durability } from "../../../gen/persistence/v1/common_pb";
import { FileKind, FileStatus, StorageService } from "../../../gen/persistence/v1/storage_pb";
import { TranslationService } from "../../../gen/persistence/v1/translation_pb";
import { openObjectStore } from "../../../server/backends/objects/open-object-store";
import type { ObjectStore } from "../../../server/backends/objects/object-store";
import { errorOf } from "../../support/errors";
import { restCall } from "../../support/rest-call";
import { s3ServerUrl, withOwnBucket } from "../../support/s3-server";
import { startTestServer, type TestServer } from "../../support/test-server";

const MiB = 1024 * 1024;
const sha256 = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");
const newId = (prefix: string) => `${prefix}-${randomBytes(6).toString("hex")}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A multipart/form-data body: the fields, then one file part. */
function form(fields: Record<string, string>, file: { name: string; type?: string; data: Uint8Array }): { body: Blob } {
  const data = new FormData();
  for (const [k, v] of Object.entries(fields)) data.append(k, v);
  data.append("file", new Blob([file.data], { type: file.type ?? "application/octet-stream" }), file.name);
  return { body: data as unknown as Blob };
}

async function upload(base: string, fields: Record<string, string>, file: { name: string; type?: string; data: Uint8Array }) {
  const res = await fetch(`${base}/api/v1/storage/files/upload`, { method: "POST", body: form(fields, file).body as unknown as FormData });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined, headers: res.headers };
}

const s3 = s3ServerUrl();
const stores: { name: string; env: () => Record<string, string>; skip?: string }[] = [
  { name: "local", env: () => ({}) },
  {
    name: "s3",
    env: (): Record<string, string> => ("url" in s3 ? { PERSISTENCE_S3_URL: withOwnBucket(s3.url, "files") } : {}),
    ...("skip" in s3 ? { skip: s3.skip } : {}),
  },
];

for (const target of stores) {
  const run = target.skip ? describe.skip : describe;
  if (target.skip) process.stderr.write(`\n*** SKIPPED: files against ${target.name}: ${target.skip} ***\n\n`);
  run(`files [${target.name} store]`, () => {
    let server: TestServer;
    let store: ObjectStore;
    const client = () => server.client(StorageService);

    beforeAll(async () => {
      const env: Record<string, string> = { PERSISTENCE_FILES_CLEANUP_INTERVAL_MS: "0", ...target.env() };
      server = await startTestServer(env);
      // the same store the service uses, to plant and remove objects behind its back
      store = await openObjectStore({ url: env.PERSISTENCE_S3_URL, dir: path.join(server.app.config.dataDir, "objects"), secret: randomBytes(32) });
    });
    afterAll(async () => {
      await store?.close();
      await server?.close();
    });

    it("takes a multipart/form-data upload and serves it back whole, by range, by presigned URL and by redirect, Chinese name intact", async () => {
      const data = randomBytes(300_000);
      const name = "关卡 文本 v2.xlsx";
      const up = await upload(server.url, { owner_id: "u1", metadata: JSON.stringify({ game: "Saga" }) }, { name, type: "application/vnd.ms-excel", data });
      expect(up.status).toBe(201);
      const file = up.json.file;
      expect(file).toMatchObject({ status: "uploaded", kind: "uploaded", filename: name, size_bytes: data.length, sha256: sha256(data), owner_id: "u1", metadata: { game: "Saga" } });

      const whole = await fetch(`${server.url}/api/v1/storage/files/${file.file_id}/download?stream=true`);
      expect(whole.status).toBe(200);
      expect(Buffer.from(await whole.arrayBuffer()).equals(data)).toBe(true);
      const disposition = whole.headers.get("content-disposition")!;
      expect(disposition).toMatch(/^attachment; filename="[\x20-\x7e]+"; filename\*=UTF-8''/);
      expect(decodeURIComponent(disposition.split("filename*=UTF-8''")[1]!)).toBe(name);

      const part = await fetch(`${server.url}/api/v1/storage/files/${file.file_id}/download?stream=true`, { headers: { range: "bytes=100-199" } });
      expect(part.status).toBe(206);
      expect(part.headers.get("content-range")).toBe(`bytes 100-199/${data.length}`);
      expect(Buffer.from(await part.arrayBuffer()).equals(data.subarray(100, 200))).toBe(true);

      const json = await restCall(server.url, "GET", `/api/v1/storage/files/${file.file_id}/download`);
      expect(json.status).toBe(200);
      expect(json.json).toMatchObject({ file_id: file.file_id, method: "GET", filename: name, size_bytes: data.length });
      const presigned = await fetch(json.json.url);
      expect(presigned.status).toBe(200);
      expect(Buffer.from(await presigned.arrayBuffer()).equals(data)).toBe(true);

      const redirect = await fetch(`${server.url}/api/v1/storage/files/${file.file_id}/download?redirect=true`, { redirect: "manual" });
      expect(redirect.status).toBe(302);
      const followed = await fetch(redirect.headers.get("location")!);
      expect(decodeURIComponent(followed.headers.get("content-disposition")!.split("filename*=UTF-8''")[1]!)).toBe(name);
      expect(Buffer.from(await followed.arrayBuffer()).equals(data)).toBe(true);
    });

    it("streams an Upload and a Download over gRPC", async () => {
      const data = randomBytes(3 * MiB + 17);
      const grpc = server.client(StorageService, "grpc");
      async function* messages() {
        yield { part: { case: "description" as const, value: { filename: "g.bin", sizeBytes: BigInt(data.length), sha256: sha256(data), kind: FileKind.TRANSLATED } } };
        for (let i = 0; i < data.length; i += 256 * 1024) yield { part: { case: "chunk" as const, value: data.subarray(i, i + 256 * 1024) } };
      }
      const { file } = await grpc.upload(messages());
      expect(file).toMatchObject({ status: FileStatus.UPLOADED, kind: FileKind.TRANSLATED, sizeBytes: BigInt(data.length) });
      const chunks: Uint8Array[] = [];
      for await (const message of grpc.download({ fileId: file!.fileId })) {
        if (message.part.case === "chunk") chunks.push(message.part.value);
        else expect(message.part.value?.fileId).toBe(file!.fileId);
      }
      expect(Buffer.concat(chunks).equals(data)).toBe(true);
    });

    it("completes a presigned PUT after checking size and SHA-256, and keeps a mismatch pending with the reason", async () => {
      const data = randomBytes(100_000);
      const good = await client().createUploadUrl({ filename: "a.csv", contentType: "text/csv", sizeBytes: BigInt(data.length), sha256: sha256(data) });
      expect(good.uploadUrl).not.toBe("");
      const put = await fetch(good.uploadUrl, { method: "PUT", body: data, headers: good.headers });
      expect(put.status).toBe(200);
      const done = await client().completeUpload({ fileId: good.fileId });
      expect(done.file).toMatchObject({ status: FileStatus.UPLOADED, sha256: sha256(data), contentType: "text/csv" });

      const wrong = await client().createUploadUrl({ filename: "b.csv", sizeBytes: BigInt(data.length), sha256: sha256(Buffer.from("other")) });
      await fetch(wrong.uploadUrl, { method: "PUT", body: data, headers: wrong.headers });
      const err = await errorOf(client().completeUpload({ fileId: wrong.fileId }));
      expect(err.code).toBe(Code.FailedPrecondition);
      expect(err.rawMessage).toMatch(/SHA-256/);
      expect((await client().getFile({ fileId: wrong.fileId })).file?.status).toBe(FileStatus.PENDING_UPLOAD);
      const rest = await restCall(server.url, "POST", `/api/v1/storage/files/${wrong.fileId}/complete`, {});
      expect(rest.status).toBe(409);
      expect(rest.json.code).toBe("failed_precondition");

      const early = await client().createUploadUrl({ filename: "c.csv", sizeBytes: 10n });
      expect((await errorOf(client().completeUpload({ fileId: early.fileId }))).code).toBe(Code.FailedPrecondition);
      expect((await errorOf(client().getDownloadUrl({ fileId: early.fileId }))).code).toBe(Code.FailedPrecondition);
    });

    it("uploads in presigned parts (one URL per part), sent in parallel, and joins them", async () => {
      const data = randomBytes(12 * MiB + 5);
      const target = await client().createUploadUrl({ filename: "big.xlsx", sizeBytes: BigInt(data.length), sha256: sha256(data), multipart: true, partSizeBytes: BigInt(5 * MiB) });
      expect(target.uploadUrl).toBe("");
      expect(target.partCount).toBe(3);
      expect(target.partSizeBytes).toBe(BigInt(5 * MiB));
      const parts = await Promise.all(
        target.parts.map(async (p) => {
          const res = await fetch(p.url, { method: "PUT", body: data.subarray(Number(p.offset), Number(p.offset + p.sizeBytes)) });
          expect(res.status).toBe(200);
          return { partNumber: p.partNumber, etag: res.headers.get("etag")! };
        }),
      );
      const { file } = await client().completeUpload({ fileId: target.fileId, parts: parts.reverse() });
      expect(file).toMatchObject({ status: FileStatus.UPLOADED, sizeBytes: BigInt(data.length), sha256: sha256(data) });
      const got = await fetch(`${server.url}/api/v1/storage/files/${target.fileId}/download?stream=true`);
      expect(sha256(Buffer.from(await got.arrayBuffer()))).toBe(sha256(data));
    });

    it("completes a multipart upload whose parts were joined already (the instance that joined them died before marking the file) when the client retries", async () => {
      const data = randomBytes(5 * MiB + 11);
      const target = await client().createUploadUrl({ filename: "joined.bin", sizeBytes: BigInt(data.length), sha256: sha256(data), multipart: true, partSizeBytes: BigInt(5 * MiB) });
      const parts = await Promise.all(
        target.parts.map(async (p) => {
          const res = await fetch(p.url, { method: "PUT", body: data.subarray(Number(p.offset), Number(p.offset + p.sizeBytes)) });
          expect(res.status).toBe(200);
          return { partNumber: p.partNumber, etag: res.headers.get("etag")! };
        }),
      );
      // What the first CompleteUpload did before its instance died: the parts joined in the store, the file still pending.
      await store.completeMultipartUpload(`files/${target.fileId}`, target.uploadId, parts);
      expect((await client().getFile({ fileId: target.fileId })).file?.status).toBe(FileStatus.PENDING_UPLOAD);
      const { file } = await client().completeUpload({ fileId: target.fileId, parts });
      expect(file).toMatchObject({ status: FileStatus.UPLOADED, sizeBytes: BigInt(data.length), sha256: sha256(data) });
      expect(sha256(Buffer.from(await (await fetch(`${server.url}/api/v1/storage/files/${target.fileId}/download?stream=true`)).arrayBuffer()))).toBe(sha256(data));
      // An upload that was aborted is still refused as gone.
      const aborted = await client().createUploadUrl({ filename: "aborted.bin", sizeBytes: BigInt(data.length), multipart: true, partSizeBytes: BigInt(5 * MiB) });
      await store.abortMultipartUpload(`files/${aborted.fileId}`, aborted.uploadId);
      const err = await errorOf(client().completeUpload({ fileId: aborted.fileId, parts: [{ partNumber: 1, etag: "x" }] }));
      expect({ code: err.code, message: err.rawMessage }).toEqual({ code: Code.FailedPrecondition, message: "the multipart upload is gone" });
    });

    it("refuses tampered, expired and wrong-method presigned URLs with 403", async () => {
      const data = randomBytes(1000);
      const up = await upload(server.url, {}, { name: "p.txt", data });
      const { url } = (await client().getDownloadUrl({ fileId: up.json.file.file_id, expiresInSeconds: 1 }));
      // one character of the signature changed (not the last: in base64 its low bits may not count)
      const at = url.length - 10;
      const tampered = url.slice(0, at) + (url[at] === "a" ? "b" : "a") + url.slice(at + 1);
      expect((await fetch(tampered)).status).toBe(403);
      expect((await fetch(url, { method: "PUT", body: "x" })).status).toBe(403);
      const put = await client().createUploadUrl({ filename: "q.txt", sizeBytes: 5n });
      expect((await fetch(put.uploadUrl)).status).toBe(403);
      await sleep(2100);
      expect((await fetch(url)).status).toBe(403);
      const err = await errorOf(client().getDownloadUrl({ fileId: up.json.file.file_id, expiresInSeconds: 8 * 86400 }));
      expect(err.code).toBe(Code.InvalidArgument);
    });

    it("refuses bad input: unknown ids 404, a NUL in a name, and strips any path from a name", async () => {
      expect((await restCall(server.url, "GET", "/api/v1/storage/files/f_nope")).status).toBe(404);
      expect((await fetch(`${server.url}/api/v1/storage/files/f_nope/download?stream=true`)).status).toBe(404);
      expect((await errorOf(client().deleteFile({ fileId: "f_nope" }))).code).toBe(Code.NotFound);
      const nul = await errorOf(client().createUploadUrl({ filename: "a\u0000b.txt", sizeBytes: 1n }));
      expect(nul.code).toBe(Code.InvalidArgument);
      expect(nul.rawMessage).toMatch(/filename/);
      const dots = await upload(server.url, { filename: "../../etc/passwd" }, { name: "x", data: Buffer.from("hi") });
      expect(dots.status).toBe(201);
      expect(dots.json.file.filename).toBe("passwd");
      const windows = await client().createUploadUrl({ filename: "..\\..\\evil.xlsx", sizeBytes: 1n });
      expect((await client().getFile({ fileId: windows.fileId })).file?.filename).toBe("evil.xlsx");
      expect((await errorOf(client().createUploadUrl({ filename: "..", sizeBytes: 1n }))).code).toBe(Code.InvalidArgument);
      expect((await errorOf(client().createUploadUrl({ filename: "x", sizeBytes: 1n, sessionId: "no-such-session" }))).code).toBe(Code.NotFound);
    });

    it("lists with filters and page tokens, counts by kind and status, deletes in batches", async () => {
      const owner = newId("owner");
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const up = await upload(server.url, { owner_id: owner, kind: i % 2 ? "translated" : "uploaded" }, { name: `f${i}.txt`, data: Buffer.from(`file ${i}`) });
        ids.push(up.json.file.file_id);
      }
      const seen: string[] = [];
      let token = "";
      do {
        const page = await restCall(server.url, "GET", `/api/v1/storage/files?owner_id=${owner}&page_size=2${token ? `&page_token=${token}` : ""}`);
        expect(page.status).toBe(200);
        expect(page.json.total).toBe(5);
        seen.push(...page.json.items.map((f: { file_id: string }) => f.file_id));
        token = page.json.next_page_token;
      } while (token);
      expect(seen.sort()).toEqual([...ids].sort());
      const translated = await client().listFiles({ ownerId: owner, kind: FileKind.TRANSLATED });
      expect(translated.total).toBe(2);

      const stats = await restCall(server.url, "GET", "/api/v1/storage/files/stats");
      expect(stats.status).toBe(200);
      expect(stats.json.by_kind.translated.count).toBeGreaterThanOrEqual(2);
      expect(stats.json.by_status.uploaded.count).toBeGreaterThanOrEqual(5);

      const batch = await restCall(server.url, "POST", "/api/v1/storage/files/batch-delete", { file_ids: [ids[0], ids[1], "f_missing"] });
      expect(batch.json).toMatchObject({ deleted: 2, not_found_ids: ["f_missing"] });
      expect((await restCall(server.url, "DELETE", `/api/v1/storage/files/${ids[2]}`)).status).toBe(200);
      expect((await client().listFiles({ ownerId: owner })).total).toBe(2);
      await expect(store.stat(`files/${ids[0]}`)).rejects.toMatchObject({ code: Code.NotFound });
    });

    it("cleans up orphans both ways, files of deleted sessions and abandoned uploads, counting first on a dry run", async () => {
      const translation = server.client(TranslationService);
      const sessionId = newId("s");
      await translation.batchUpsertSessions({ sessions: [{ sessionId, filename: "s.xlsx" }], durability: Durability.COMMITTED });
      const ofSession = await upload(server.url, { session_id: sessionId }, { name: "s.xlsx", data: Buffer.from("session file") });
      expect(ofSession.status).toBe(201);
      const lost = await upload(server.url, {}, { name: "lost.txt", data: Buffer.from("lost") });
      await store.delete(`files/${lost.json.file.file_id}`);
      await store.put("files/f_orphan_" + randomBytes(4).toString("hex"), Buffer.from("debris"));
      const abandoned = await client().createUploadUrl({ filename: "never.bin", sizeBytes: BigInt(6 * MiB), multipart: true });
      await translation.deleteSession({ sessionId });
      await sleep(3500); // cleanup leaves what changed in its last two seconds to the next run (S3 times are whole seconds, rounded up by some stores)

      const dry = await client().cleanupFiles({ dryRun: true, abandonedHours: 1 });
      expect(dry).toMatchObject({ dryRun: true, sessionFiles: 1, missingObjects: 1 });
      expect(dry.orphanObjects).toBeGreaterThanOrEqual(1);
      expect((await client().getFile({ fileId: ofSession.json.file.file_id })).file).toBeDefined();

      const done = await client().cleanupFiles({});
      expect(done).toMatchObject({ dryRun: false, sessionFiles: 1, missingObjects: 1 });
      expect(done.orphanObjects).toBe(dry.orphanObjects);
      for (const id of [ofSession.json.file.file_id, lost.json.file.file_id]) expect((await errorOf(client().getFile({ fileId: id }))).code).toBe(Code.NotFound);
      expect((await store.list({ prefix: "files/f_orphan_" })).items).toEqual([]);
      // not abandoned yet (a day by default): still there, its upload open
      expect((await client().getFile({ fileId: abandoned.fileId })).file?.status).toBe(FileStatus.PENDING_UPLOAD);
      expect((await store.listMultipartUploads({ prefix: "files/" })).map((u) => u.uploadId)).toContain(abandoned.uploadId);
      const again = await client().cleanupFiles({});
      expect(again).toMatchObject({ sessionFiles: 0, missingObjects: 0, orphanObjects: 0, expiredFiles: 0 });
    });

    it("refuses an oversize upload with 413 / RESOURCE_EXHAUSTED, storing nothing", async () => {
      const small = await startTestServer({ PERSISTENCE_FILES_MAX_BYTES: String(MiB), PERSISTENCE_FILES_CLEANUP_INTERVAL_MS: "0", ...target.env() });
      try {
        const big = await upload(small.url, { owner_id: "big" }, { name: "big.bin", data: randomBytes(2 * MiB) });
        expect(big.status).toBe(413);
        expect(big.json.code).toBe("resource_exhausted");
        const err = await errorOf(small.client(StorageService).createUploadUrl({ filename: "big.bin", sizeBytes: BigInt(2 * MiB) }));
        expect(err.code).toBe(Code.ResourceExhausted);
        const put = await small.client(StorageService).createUploadUrl({ filename: "ok.bin", sizeBytes: 10n });
        expect((await small.client(StorageService).listFiles({ ownerId: "big" })).total).toBe(0);
        expect(put.fileId).not.toBe("");
      } finally {
        await small.close();
      }
    });
  });
}
