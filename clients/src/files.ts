import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { stat } from "node:fs/promises";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { Code, createClient, type Client, type Transport } from "@connectrpc/connect";
import { FileKind, StorageService, type CreateUploadUrlResponse, type FileInfo } from "./gen/persistence/v1/storage_pb.js";
import { withTypedErrors } from "./client.js";
import { PersistenceError } from "./errors.js";

/** The typed StorageService client (every error a PersistenceError), over a PersistenceClient's transport. */
export type StorageClient = Client<typeof StorageService>;

/** A StorageService client on `source`'s transport (a PersistenceClient, or any Connect transport). */
export function createStorageClient(source: { readonly transport: Transport } | Transport): StorageClient {
  const transport = "transport" in source ? source.transport : source;
  return withTypedErrors(createClient(StorageService, transport));
}

/** Where a presigned multipart upload stands: pass it back as `resume` to finish after a failure. */
export interface UploadState {
  readonly fileId: string;
  readonly target: CreateUploadUrlResponse;
  /** Parts uploaded so far, with the ETag each PUT answered. */
  readonly done: readonly { readonly partNumber: number; readonly etag: string }[];
}

export interface UploadFileOptions {
  /** Default: the path's last segment, or "upload.bin" for a stream. */
  readonly filename?: string;
  readonly contentType?: string;
  readonly kind?: FileKind;
  readonly sessionId?: string;
  readonly ownerId?: string;
  readonly metadata?: Record<string, unknown>;
  /** A stream's length in bytes: needed for a presigned upload; without it a stream goes through the service (Upload). */
  readonly size?: number;
  /** Parts sent at once (default 4); memory is about this many parts. */
  readonly concurrency?: number;
  /** Attempts per part before the upload fails (default 3). */
  readonly attempts?: number;
  /** Seconds the presigned URLs work (default the service's, 15 minutes). */
  readonly expiresInSeconds?: number;
  /** Resume an upload that failed (UploadFileError.state): only the parts not yet done are sent. */
  readonly resume?: UploadState;
  /** Told the bytes uploaded so far. */
  readonly onProgress?: (bytes: number) => void;
  readonly signal?: AbortSignal;
}

/** An upload that failed; `state` resumes it (`uploadFile(source, { resume: err.state })`) while its URLs are valid. */
export class UploadFileError extends Error {
  constructor(
    message: string,
    readonly state: UploadState | undefined,
    override readonly cause: unknown,
  ) {
    super(message);
    this.name = "UploadFileError";
  }
}


/**
 * Uploads a file (a path) or a stream. A path (or a stream of known `size`) goes straight to the object
 * store through presigned URLs: one PUT for a small file, parts in parallel for a large one, each part
 * retried; the SHA-256 is declared so the service verifies the whole. A stream of unknown size goes
 * through the service (the Upload stream). Resolves with the file, `uploaded`.
 */
export async function uploadFile(storage: StorageClient, source: string | Readable | AsyncIterable<Uint8Array>, options: UploadFileOptions = {}): Promise<FileInfo> {
  const isPath = typeof source === "string";
  const filename = options.filename ?? (isPath ? (source.split(/[/\\]/).pop() ?? "upload.bin") : "upload.bin");
  const description = {
    filename,
    contentType: options.contentType ?? "",
    kind: options.kind ?? FileKind.UPLOADED,
    sessionId: options.sessionId ?? "",
    ownerId: options.ownerId ?? "",
    ...(options.metadata ? { metadata: options.metadata as never } : {}),
  };
  if (!isPath && options.size === undefined) {
    const body = source;
    async function* messages() {
      yield { part: { case: "description" as const, value: description } };
      let sent = 0;
      for await (const chunk of body as AsyncIterable<Uint8Array>) {
        sent += chunk.length;
        options.onProgress?.(sent);
        yield { part: { case: "chunk" as const, value: chunk } };
      }
    }
    const { file } = await storage.upload(messages(), options.signal ? { signal: options.signal } : {});
    return file!;
  }
  const size = isPath ? (await stat(source)).size : options.size!;
  const sha256 = isPath ? await hashFile(source) : "";
  let state = options.resume;
  try {
    if (!state) {
      const target = await storage.createUploadUrl({
        ...description,
        sizeBytes: BigInt(size),
        sha256,
        expiresInSeconds: options.expiresInSeconds ?? 0,
      });
      state = { fileId: target.fileId, target, done: [] };
    }
    const { target } = state;
    const resumedAt = target.parts.filter((p) => state!.done.some((d) => d.partNumber === p.partNumber)).reduce((n, p) => n + Number(p.sizeBytes), 0);
    const reader = isPath ? (start: number, length: number) => readRange(source, start, length) : sequentialReader(source as AsyncIterable<Uint8Array>, resumedAt);
    if (target.uploadUrl !== "") {
      if (state.done.length === 0) {
        await withAttempts(options.attempts ?? 3, async () => {
          await put(target.uploadUrl, await reader(0, size), target.headers, options.signal);
        });
        state = { ...state, done: [{ partNumber: 1, etag: "" }] };
        options.onProgress?.(size);
      }
      const { file } = await storage.completeUpload({ fileId: state.fileId });
      return file!;
    }
    const done = new Map(state.done.map((p) => [p.partNumber, p.etag]));
    const queue = target.parts.filter((p) => !done.has(p.partNumber));
    let sent = target.parts.filter((p) => done.has(p.partNumber)).reduce((n, p) => n + Number(p.sizeBytes), 0);
    // a stream is read in order, so its parts are taken in order; a file's parts are read where they lie
    const worker = async () => {
      for (let part = queue.shift(); part; part = queue.shift()) {
        const body = await reader(Number(part.offset), Number(part.sizeBytes));
        const etag = await withAttempts(options.attempts ?? 3, () => put(part.url, body, {}, options.signal));
        done.set(part.partNumber, etag);
        sent += body.length;
        options.onProgress?.(sent);
      }
    };
    const workers = Array.from({ length: isPath ? Math.max(1, options.concurrency ?? 4) : 1 }, worker);
    const results = await Promise.allSettled(workers);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    state = { ...state, done: [...done].map(([partNumber, etag]) => ({ partNumber, etag })) };
    if (failed) throw failed.reason;
    const { file } = await storage.completeUpload({ fileId: state.fileId, parts: state.done.map((p) => ({ ...p })) });
    return file!;
  } catch (err) {
    throw new UploadFileError(`upload of ${JSON.stringify(filename)} failed: ${err instanceof Error ? err.message : String(err)}`, state, err);
  }
}

export interface DownloadFileOptions {
  /** Stream the bytes through the service instead of from a presigned URL (default false). */
  readonly throughService?: boolean;
  /** The API key, for `throughService` (the presigned URL needs none). */
  readonly apiKey?: string;
  /** The service's base URL, for `throughService`. */
  readonly baseUrl?: string;
  readonly signal?: AbortSignal;
}

/**
 * Downloads a file to `destination` (a path or a writable stream), streamed, and checks its SHA-256
 * against the file's metadata. Resolves with the file's metadata.
 */
export async function downloadFile(storage: StorageClient, fileId: string, destination: string | Writable, options: DownloadFileOptions = {}): Promise<FileInfo> {
  const { file } = await storage.getFile({ fileId });
  let url: string;
  const headers: Record<string, string> = {};
  if (options.throughService) {
    if (!options.baseUrl) throw new Error("downloadFile: throughService needs baseUrl");
    url = `${options.baseUrl.replace(/\/+$/, "")}/api/v1/storage/files/${encodeURIComponent(fileId)}/download?stream=true`;
    if (options.apiKey) headers.authorization = `Bearer ${options.apiKey}`;
  } else {
    url = (await storage.getDownloadUrl({ fileId })).url;
  }
  const res = await fetch(url, { headers, ...(options.signal ? { signal: options.signal } : {}) });
  if (!res.ok || !res.body) throw new PersistenceError(`download of ${fileId} answered HTTP ${res.status}`, res.status === 404 ? Code.NotFound : Code.Unavailable);
  const hash = createHash("sha256");
  const body = Readable.fromWeb(res.body as never);
  body.on("data", (chunk: Buffer) => hash.update(chunk));
  await pipeline(body, typeof destination === "string" ? createWriteStream(destination) : destination);
  const sha256 = hash.digest("hex");
  if (file!.sha256 !== "" && sha256 !== file!.sha256) {
    throw new PersistenceError(`download of ${fileId} does not match its SHA-256 (${sha256}, expected ${file!.sha256})`, Code.DataLoss);
  }
  return file!;
}

async function put(url: string, body: Buffer, headers: Record<string, string>, signal?: AbortSignal): Promise<string> {
  const res = await fetch(url, { method: "PUT", body, headers, ...(signal ? { signal } : {}) });
  await res.arrayBuffer();
  if (!res.ok) throw new PersistenceError(`PUT to the object store answered HTTP ${res.status}`, res.status === 403 ? Code.PermissionDenied : Code.Unavailable);
  return res.headers.get("etag") ?? "";
}

/** Runs `fn` up to `attempts` times, waiting a little longer each time; a refusal (403) is not retried. */
async function withAttempts<T>(attempts: number, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= attempts || (err instanceof PersistenceError && err.code === Code.PermissionDenied)) throw err;
      await new Promise((resolve) => setTimeout(resolve, 200 * 2 ** attempt));
    }
  }
}

async function hashFile(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

async function readRange(file: string, start: number, length: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  if (length === 0) return Buffer.alloc(0);
  for await (const chunk of createReadStream(file, { start, end: start + length - 1, highWaterMark: 1024 * 1024 })) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Reads a stream's bytes in order, `length` at a time, the stream's first byte being byte `position` of the file (a resumed upload's first missing part). */
function sequentialReader(source: AsyncIterable<Uint8Array>, position: number): (start: number, length: number) => Promise<Buffer> {
  const iterator = source[Symbol.asyncIterator]();
  let leftover = Buffer.alloc(0);
  return async (start, length) => {
    if (start !== position) throw new Error("a stream can only be read in order: resume a stream upload with a stream positioned at the first missing part");
    const chunks: Buffer[] = [leftover];
    let have = leftover.length;
    while (have < length) {
      const next = await iterator.next();
      if (next.done) break;
      const chunk = Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
      chunks.push(chunk);
      have += chunk.length;
    }
    const all = Buffer.concat(chunks);
    if (all.length < length) throw new Error(`the stream ended after ${start + all.length} bytes; ${start + length} were declared`);
    leftover = Buffer.from(all.subarray(length));
    position += length;
    return all.subarray(0, length);
  };
}
