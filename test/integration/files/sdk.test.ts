import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { createPersistenceClient, createStorageClient, downloadFile, FileStatus, uploadFile, UploadFileError, type PersistenceClient } from "../../../clients/src/index";
import { startTestServer, type TestServer } from "../../support/test-server";

const MiB = 1024 * 1024;
const sha256 = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");

describe("the client SDK's file helpers", () => {
  let server: TestServer;
  let client: PersistenceClient;
  let dir: string;
  const storage = () => createStorageClient(client);

  beforeAll(async () => {
    server = await startTestServer({
      PERSISTENCE_FILES_CLEANUP_INTERVAL_MS: "0",
      PERSISTENCE_FILES_MULTIPART_THRESHOLD_BYTES: String(5 * MiB),
      PERSISTENCE_FILES_PART_SIZE_BYTES: String(5 * MiB),
    });
    client = createPersistenceClient({ baseUrl: server.url, httpVersion: "1.1" });
    dir = mkdtempSync(path.join(os.tmpdir(), "persistence-sdk-files-"));
  });
  afterAll(async () => {
    client?.close();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("uploads a path in parallel presigned parts and downloads it back, checked", async () => {
    const data = randomBytes(17 * MiB + 3);
    const source = path.join(dir, "表格.xlsx");
    writeFileSync(source, data);
    const seen: number[] = [];
    const file = await uploadFile(storage(), source, { ownerId: "sdk", onProgress: (n) => seen.push(n) });
    expect(file).toMatchObject({ status: FileStatus.UPLOADED, filename: "表格.xlsx", sizeBytes: BigInt(data.length), sha256: sha256(data) });
    expect(seen[seen.length - 1]).toBe(data.length);
    const target = path.join(dir, "back.xlsx");
    await downloadFile(storage(), file.fileId, target);
    expect(readFileSync(target).equals(data)).toBe(true);
    const streamed = path.join(dir, "streamed.xlsx");
    await downloadFile(storage(), file.fileId, streamed, { throughService: true, baseUrl: server.url });
    expect(readFileSync(streamed).equals(data)).toBe(true);
  });

  it("uploads a stream of unknown length through the service, and one of known length in presigned parts", async () => {
    const data = randomBytes(11 * MiB);
    const through = await uploadFile(storage(), Readable.from([data.subarray(0, 3 * MiB), data.subarray(3 * MiB)]), { filename: "s.bin" });
    expect(through).toMatchObject({ status: FileStatus.UPLOADED, sha256: sha256(data) });
    const parts = await uploadFile(storage(), Readable.from([data]), { filename: "p.bin", size: data.length });
    expect(parts).toMatchObject({ status: FileStatus.UPLOADED, sizeBytes: BigInt(data.length), sha256: sha256(data) });
  });

  it("resumes a multipart upload after a failure, sending only the parts not yet done", async () => {
    const data = randomBytes(16 * MiB);
    const source = path.join(dir, "resume.bin");
    writeFileSync(source, data);
    const stop = new AbortController();
    const failure = await uploadFile(storage(), source, { concurrency: 1, attempts: 1, signal: stop.signal, onProgress: () => stop.abort() }).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(UploadFileError);
    const state = (failure as UploadFileError).state!;
    expect(state.done.length).toBe(1);
    const sent: number[] = [];
    const file = await uploadFile(storage(), source, { resume: state, onProgress: (n) => sent.push(n) });
    expect(file).toMatchObject({ status: FileStatus.UPLOADED, fileId: state.fileId, sha256: sha256(data) });
    expect(sent[0]).toBeGreaterThan(5 * MiB); // the first part was not sent again
  });
});
