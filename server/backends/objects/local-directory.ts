import { createHmac, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import { constants as fsConstants } from "node:fs";
import { access, copyFile, mkdir, open, readdir, readFile, rename, rm, rmdir, stat, unlink, type FileHandle } from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import { failedPrecondition, invalidArgument, notFound, permissionDenied } from "../../core/errors.js";
import {
  BodyMeter,
  checkCompletedParts,
  checkDescription,
  checkListOptions,
  checkObjectKey,
  checkPartNumber,
  checkPrefix,
  checkPresignGet,
  checkPutOptions,
  checkRange,
  checkUploadId,
  chunksOf,
  clampRange,
  compareKeys,
  cursorAfter,
  presignSeconds,
} from "./object-rules.js";
import {
  MAX_PART_BYTES,
  MIN_PART_BYTES,
  type CompletedPart,
  type GetOptions,
  type ListOptions,
  type MultipartOptions,
  type MultipartUpload,
  type ObjectBody,
  type ObjectInfo,
  type ObjectPage,
  type ObjectRead,
  type ObjectStore,
  type ObjectSummary,
  type PresignedUrl,
  type PresignGetOptions,
  type PresignOptions,
  type PutOptions,
  type StoredObject,
} from "./object-store.js";

/**
 * The embedded object store: one directory on local disk.
 *
 * Layout under `dir`:
 * - `objects/<segment>/.../<last segment>%`: one file per object. Key segments become path segments
 *   ("%" in a segment is written "%25"); the object's own file ends in a bare "%", which no directory
 *   name can, so "a" and "a/b" can both exist. Each file is the object's bytes followed by a trailer
 *   (JSON description, its length, a magic number), so bytes and description change in one rename.
 * - `uploads/<upload id>/`: a multipart upload's `upload.json` and its `<n>.part` files.
 * - `tmp/`: files being written; each becomes visible by rename after an fsync, never half written.
 *   Leftovers of a crash are swept when the store opens.
 *
 * Presigned URLs are `<presignBaseUrl>/<token>`, the token an HMAC-SHA256-signed grant (method, key,
 * expiry, upload part or download headers). This service serves them itself: its HTTP route calls
 * `serveLocalPresigned` (object-http.ts), which checks them with `verifyPresigned`.
 */
export interface LocalDirectoryStore extends ObjectStore {
  readonly kind: "local";
  /** The directory the store lives in. */
  readonly dir: string;
  /**
   * The grant a presigned token carries, when its signature holds, it has not expired and it was
   * made for `method` (HEAD is allowed where GET is). PERMISSION_DENIED otherwise, saying which.
   */
  verifyPresigned(token: string, method: string): LocalGrant;
  /** Stores part `partNumber` of an upload (what a presigned part URL does); returns its etag. */
  uploadPart(key: string, uploadId: string, partNumber: number, body: ObjectBody, options?: { readonly maxBytes?: number }): Promise<UploadedPart>;
}

export interface LocalDirectoryOptions {
  /** The directory; created when missing (the service uses `<data dir>/objects`). */
  readonly dir: string;
  /** Key of the presigned URLs' HMAC-SHA256, at least 32 bytes; whoever knows it can mint URLs. */
  readonly secret: string | Uint8Array;
  /**
   * Where presigned tokens are served, e.g. `https://files.example.com/objects`; a URL is this plus
   * "/<token>". Without it, presigning fails with FAILED_PRECONDITION. A function is asked at each
   * presign (a service listening on port 0 knows its address only once it listens).
   */
  readonly presignBaseUrl?: string | (() => string | undefined);
}

/** What a verified presigned token allows. */
export interface LocalGrant {
  readonly method: "GET" | "PUT";
  readonly key: string;
  /** Set for an upload part: the upload and part the PUT body is. */
  readonly uploadId?: string;
  readonly partNumber?: number;
  /** Download headers chosen at signing. */
  readonly contentDisposition?: string;
  readonly contentType?: string;
  readonly expiresAt: Date;
}

export interface UploadedPart {
  readonly partNumber: number;
  readonly etag: string;
  readonly size: number;
}

/** The description kept in an object file's trailer. */
interface Trailer {
  readonly contentType: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly sha256: string;
}

interface UploadRecord {
  readonly key: string;
  readonly contentType: string;
  readonly metadata: Record<string, string>;
  readonly initiated: string;
}

/** Grant fields as signed: short names keep URLs short. */
interface TokenPayload {
  m: "GET" | "PUT";
  k: string;
  e: number;
  u?: string;
  n?: number;
  d?: string;
  t?: string;
}

const MAGIC = Buffer.from("PSO1");
const FOOTER_BYTES = 4 + MAGIC.length;
const TMP_STALE_MS = 3600_000;
const MIN_SECRET_BYTES = 32;
const MAX_NAME_BYTES = 255;

/** Whether an object store is the local directory (whose presigned URLs this service serves). */
export function isLocalDirectoryStore(store: ObjectStore): store is LocalDirectoryStore {
  return store.kind === "local" && "verifyPresigned" in store;
}

/** Opens (creating when missing) the store in `options.dir`. */
export async function openLocalDirectoryStore(options: LocalDirectoryOptions): Promise<LocalDirectoryStore> {
  const secret = typeof options.secret === "string" ? Buffer.from(options.secret, "utf8") : Buffer.from(options.secret);
  if (secret.length < MIN_SECRET_BYTES) throw new Error(`the local object store's signing secret must be at least ${MIN_SECRET_BYTES} bytes`);
  const root = path.resolve(options.dir);
  const objectsDir = path.join(root, "objects");
  const uploadsDir = path.join(root, "uploads");
  const tmpDir = path.join(root, "tmp");
  for (const d of [objectsDir, uploadsDir, tmpDir]) await mkdir(d, { recursive: true });
  await sweepTmp(tmpDir);
  const given = options.presignBaseUrl;
  const baseUrlOf = (): string | undefined => (typeof given === "function" ? given() : given)?.replace(/\/+$/, "");

  const objectFile = (key: string): string => {
    const segments = key.split("/").map(encodeSegment);
    segments[segments.length - 1] += "%";
    for (const s of segments) {
      if (Buffer.byteLength(s) > MAX_NAME_BYTES) {
        throw invalidArgument([{ field: "key", description: `a segment is too long for the local store (at most ${MAX_NAME_BYTES - 1} bytes once "%" is written "%25")` }]);
      }
    }
    return path.join(objectsDir, ...segments);
  };
  const uploadDir = (uploadId: string): string => {
    if (!/^[0-9a-f]{32}$/.test(uploadId)) throw notFound("upload", uploadId);
    return path.join(uploadsDir, uploadId);
  };

  /** Writes chunks plus a trailer to a new temporary file, fsync'd; removes it on any failure. */
  const writeTemp = async (chunks: AsyncIterable<Buffer>, meter: BodyMeter, describe: (sha256: string) => Trailer): Promise<{ tmp: string; sha256: string }> => {
    const tmp = path.join(tmpDir, randomUUID());
    const fh = await open(tmp, "wx");
    try {
      for await (const chunk of chunks) {
        meter.add(chunk);
        await writeAll(fh, chunk);
      }
      const sha256 = meter.finish();
      await writeAll(fh, encodeTrailer(describe(sha256)));
      await fh.sync();
      await fh.close();
      return { tmp, sha256 };
    } catch (err) {
      await fh.close().catch(() => {});
      await unlink(tmp).catch(() => {});
      throw err;
    }
  };

  /** Moves a finished temporary file to `target`, creating its folders, and makes the rename durable. */
  const publish = async (tmp: string, target: string): Promise<void> => {
    try {
      for (let attempt = 0; ; attempt++) {
        await mkdir(path.dirname(target), { recursive: true });
        try {
          await rename(tmp, target);
          break;
        } catch (err) {
          // a delete emptying and removing the folder in between: make it again
          if (!isCode(err, "ENOENT") || attempt >= 3) throw err;
        }
      }
      await fsyncDir(path.dirname(target));
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw err;
    }
  };

  /** Removes the empty folders a removed file leaves, up to (not including) `top`. */
  const pruneFolders = async (from: string, top: string): Promise<void> => {
    for (let d = from; d.startsWith(top + path.sep); d = path.dirname(d)) {
      try {
        await rmdir(d);
      } catch {
        return; // not empty (or already gone): the folders above are not empty either
      }
    }
  };

  const readUpload = async (key: string, uploadId: string): Promise<UploadRecord> => {
    try {
      const record = JSON.parse(await readFile(path.join(uploadDir(uploadId), "upload.json"), "utf8")) as UploadRecord;
      if (record.key === key) return record;
    } catch (err) {
      if (!isCode(err, "ENOENT")) throw err;
    }
    throw notFound("upload", uploadId);
  };

  const sign = (payload: TokenPayload): PresignedUrl => {
    const baseUrl = baseUrlOf();
    if (baseUrl === undefined) {
      throw failedPrecondition("the local object store cannot presign URLs without a public base URL", {
        type: "CONFIGURATION",
        subject: "objects",
        description: "give the store the base URL its presigned route is served under",
      });
    }
    const body = Buffer.from(JSON.stringify(payload)).toString("base64url");
    const mac = createHmac("sha256", secret).update(body).digest("base64url");
    return { url: `${baseUrl}/${body}.${mac}`, method: payload.m, expiresAt: new Date(payload.e * 1000) };
  };
  const expiry = (seconds: number): number => Math.floor(Date.now() / 1000) + seconds;

  const store: LocalDirectoryStore = {
    name: "objects",
    kind: "local",
    dir: root,

    async ping() {
      await access(root, fsConstants.W_OK);
    },

    async close() {},

    async put(key: string, body: ObjectBody, options?: PutOptions): Promise<StoredObject> {
      checkObjectKey(key);
      const checked = checkPutOptions(options);
      const target = objectFile(key);
      const meter = new BodyMeter(checked);
      const { tmp, sha256 } = await writeTemp(chunksOf(body), meter, (sha) => ({ contentType: checked.contentType, metadata: checked.metadata, sha256: sha }));
      await publish(tmp, target);
      return { key, size: meter.size, etag: sha256, sha256 };
    },

    async get(key: string, options: GetOptions = {}): Promise<ObjectRead> {
      checkObjectKey(key);
      if (options.range) checkRange(options.range);
      const file = await openObject(objectFile(key), key);
      try {
        const info = describe(key, file);
        if (!options.range) return { info, body: bodyStream(file.fh, 0, info.size - 1) };
        const range = clampRange(options.range, info.size, key);
        return { info, range, body: bodyStream(file.fh, range.start, range.end) };
      } catch (err) {
        await file.fh.close();
        throw err;
      }
    },

    async stat(key: string): Promise<ObjectInfo> {
      checkObjectKey(key);
      const file = await openObject(objectFile(key), key);
      await file.fh.close();
      return describe(key, file);
    },

    async delete(key: string): Promise<void> {
      checkObjectKey(key);
      const file = objectFile(key);
      try {
        await unlink(file);
      } catch (err) {
        if (isCode(err, "ENOENT")) return;
        throw err;
      }
      await pruneFolders(path.dirname(file), objectsDir);
    },

    async deleteMany(keys: readonly string[]): Promise<void> {
      keys.forEach((k, i) => checkObjectKey(k, `keys[${i}]`));
      for (const k of keys) await store.delete(k);
    },

    async list(options?: ListOptions): Promise<ObjectPage> {
      const { prefix, after, limit } = checkListOptions(options);
      const items: ObjectSummary[] = [];
      let more = false;
      for await (const key of walk(objectsDir, "", prefix, after)) {
        if (items.length === limit) {
          more = true;
          break;
        }
        let file: OpenObject;
        try {
          file = await openObject(objectFile(key), key);
        } catch {
          continue; // deleted since the folder was read
        }
        await file.fh.close();
        items.push({ key, size: file.size, etag: file.trailer.sha256, lastModified: file.mtime });
      }
      const last = items[items.length - 1];
      return more && last ? { items, nextCursor: cursorAfter(last.key) } : { items };
    },

    async copy(fromKey: string, toKey: string): Promise<ObjectInfo> {
      checkObjectKey(fromKey, "from_key");
      checkObjectKey(toKey, "to_key");
      const tmp = path.join(tmpDir, randomUUID());
      try {
        // a reflink where the filesystem has them (no bytes copied), a kernel-side copy otherwise
        await copyFile(objectFile(fromKey), tmp, fsConstants.COPYFILE_FICLONE);
        const fh = await open(tmp, "r+");
        await fh.sync().finally(() => fh.close());
      } catch (err) {
        await unlink(tmp).catch(() => {});
        if (isCode(err, "ENOENT")) throw notFound("object", fromKey);
        throw err;
      }
      await publish(tmp, objectFile(toKey));
      return store.stat(toKey);
    },

    async presignGet(key: string, options?: PresignGetOptions): Promise<PresignedUrl> {
      checkObjectKey(key);
      const { seconds, contentDisposition, contentType } = checkPresignGet(options);
      return sign({
        m: "GET",
        k: key,
        e: expiry(seconds),
        ...(contentDisposition !== undefined ? { d: contentDisposition } : {}),
        ...(contentType !== undefined ? { t: contentType } : {}),
      });
    },

    async presignPut(key: string, options?: PresignOptions): Promise<PresignedUrl> {
      checkObjectKey(key);
      return sign({ m: "PUT", k: key, e: expiry(presignSeconds(options?.expiresInSeconds)) });
    },

    async createMultipartUpload(key: string, options?: MultipartOptions): Promise<string> {
      checkObjectKey(key);
      const { contentType, metadata } = checkDescription(options);
      objectFile(key); // a key too long for this store is refused now, not at completion
      const uploadId = randomBytes(16).toString("hex");
      const record: UploadRecord = { key, contentType, metadata, initiated: new Date().toISOString() };
      const tmp = path.join(tmpDir, randomUUID());
      await writeDurably(tmp, JSON.stringify(record));
      await mkdir(uploadDir(uploadId));
      await publish(tmp, path.join(uploadDir(uploadId), "upload.json"));
      return uploadId;
    },

    async presignUploadPart(key: string, uploadId: string, partNumber: number, options?: PresignOptions): Promise<PresignedUrl> {
      checkObjectKey(key);
      checkUploadId(uploadId);
      checkPartNumber(partNumber);
      await readUpload(key, uploadId);
      return sign({ m: "PUT", k: key, e: expiry(presignSeconds(options?.expiresInSeconds)), u: uploadId, n: partNumber });
    },

    async uploadPart(key: string, uploadId: string, partNumber: number, body: ObjectBody, options: { readonly maxBytes?: number } = {}): Promise<UploadedPart> {
      checkObjectKey(key);
      checkUploadId(uploadId);
      checkPartNumber(partNumber);
      await readUpload(key, uploadId);
      const meter = new BodyMeter({ maxBytes: Math.min(options.maxBytes ?? MAX_PART_BYTES, MAX_PART_BYTES) });
      const { tmp, sha256 } = await writeTemp(chunksOf(body), meter, (sha) => ({ contentType: "", metadata: {}, sha256: sha }));
      // the upload may have been completed or aborted while the part was arriving
      await readUpload(key, uploadId).catch(async (err: unknown) => {
        await unlink(tmp).catch(() => {});
        throw err;
      });
      await publish(tmp, path.join(uploadDir(uploadId), `${partNumber}.part`));
      return { partNumber, etag: sha256, size: meter.size };
    },

    async completeMultipartUpload(key: string, uploadId: string, parts: readonly CompletedPart[]): Promise<ObjectInfo> {
      checkObjectKey(key);
      checkUploadId(uploadId);
      const wanted = checkCompletedParts(parts);
      const upload = await readUpload(key, uploadId);
      const opened: OpenObject[] = [];
      try {
        for (const [i, part] of wanted.entries()) {
          let file: OpenObject;
          try {
            file = await openObject(path.join(uploadDir(uploadId), `${part.partNumber}.part`), key);
          } catch {
            throw partRefused(i, `part ${part.partNumber} was not uploaded`);
          }
          opened.push(file);
          if (file.trailer.sha256 !== part.etag) throw partRefused(i, `part ${part.partNumber} has another etag than ${JSON.stringify(part.etag)}`);
          if (i < wanted.length - 1 && file.size < MIN_PART_BYTES) {
            throw partRefused(i, `part ${part.partNumber} is ${file.size} bytes; every part but the last needs at least ${MIN_PART_BYTES}`);
          }
        }
        const concatenated = async function* (): AsyncGenerator<Buffer> {
          for (const file of opened) if (file.size > 0) yield* bodyStream(file.fh, 0, file.size - 1, false);
        };
        const meter = new BodyMeter({});
        const { tmp } = await writeTemp(concatenated(), meter, (sha256) => ({ contentType: upload.contentType, metadata: upload.metadata, sha256 }));
        await publish(tmp, objectFile(key));
      } finally {
        await Promise.all(opened.map((f) => f.fh.close().catch(() => {})));
      }
      await rm(uploadDir(uploadId), { recursive: true, force: true });
      return store.stat(key);
    },

    async abortMultipartUpload(key: string, uploadId: string): Promise<void> {
      checkObjectKey(key);
      checkUploadId(uploadId);
      try {
        await readUpload(key, uploadId);
      } catch {
        return; // unknown, finished, or someone else's key: nothing to drop
      }
      await rm(uploadDir(uploadId), { recursive: true, force: true });
    },

    async listMultipartUploads(options: { readonly prefix?: string } = {}): Promise<readonly MultipartUpload[]> {
      const prefix = checkPrefix(options.prefix);
      const uploads: MultipartUpload[] = [];
      for (const id of await readdir(uploadsDir)) {
        let record: UploadRecord;
        try {
          record = JSON.parse(await readFile(path.join(uploadsDir, id, "upload.json"), "utf8")) as UploadRecord;
        } catch {
          continue; // being created or removed
        }
        if (record.key.startsWith(prefix)) uploads.push({ key: record.key, uploadId: id, initiated: new Date(record.initiated) });
      }
      return uploads.sort((a, b) => compareKeys(a.key, b.key) || a.initiated.getTime() - b.initiated.getTime());
    },

    verifyPresigned(token: string, method: string): LocalGrant {
      const [body, mac, extra] = typeof token === "string" ? token.split(".") : [];
      if (!body || !mac || extra !== undefined) throw permissionDenied("presigned URL refused: malformed token");
      const expected = createHmac("sha256", secret).update(body).digest();
      const given = Buffer.from(mac, "base64url");
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        throw permissionDenied("presigned URL refused: the signature does not match");
      }
      const payload = JSON.parse(Buffer.from(body, "base64url").toString("utf8")) as TokenPayload;
      if (Date.now() >= payload.e * 1000) throw permissionDenied("presigned URL refused: it has expired");
      const asked = method.toUpperCase() === "HEAD" ? "GET" : method.toUpperCase();
      if (asked !== payload.m) throw permissionDenied(`presigned URL refused: it allows ${payload.m}, not ${method.toUpperCase()}`);
      return {
        method: payload.m,
        key: payload.k,
        expiresAt: new Date(payload.e * 1000),
        ...(payload.u !== undefined ? { uploadId: payload.u } : {}),
        ...(payload.n !== undefined ? { partNumber: payload.n } : {}),
        ...(payload.d !== undefined ? { contentDisposition: payload.d } : {}),
        ...(payload.t !== undefined ? { contentType: payload.t } : {}),
      };
    },
  };
  return store;
}

function partRefused(index: number, description: string) {
  return failedPrecondition("the parts do not make up the upload", { type: "PART", subject: `parts[${index}]`, description });
}

/** An open object file: its handle, data size (without the trailer), trailer and time. */
interface OpenObject {
  readonly fh: FileHandle;
  readonly size: number;
  readonly trailer: Trailer;
  readonly mtime: Date;
}

/** Opens an object file and reads its trailer; NOT_FOUND when absent. The caller closes `fh`. */
async function openObject(file: string, key: string): Promise<OpenObject> {
  let fh: FileHandle;
  try {
    fh = await open(file, "r");
  } catch (err) {
    if (isCode(err, "ENOENT") || isCode(err, "ENOTDIR") || isCode(err, "EISDIR")) throw notFound("object", key);
    throw err;
  }
  try {
    const { size: fileSize, mtimeMs } = await fh.stat();
    const mtime = new Date(mtimeMs);
    const footer = fileSize >= FOOTER_BYTES ? await readAt(fh, fileSize - FOOTER_BYTES, FOOTER_BYTES) : Buffer.alloc(0);
    const length = footer.length === FOOTER_BYTES && footer.subarray(4).equals(MAGIC) ? footer.readUInt32BE(0) : -1;
    const size = fileSize - FOOTER_BYTES - length;
    if (length < 0 || size < 0) throw new Error(`object file ${file} has no valid trailer`);
    const trailer = JSON.parse((await readAt(fh, size, length)).toString("utf8")) as Trailer;
    return { fh, size, trailer, mtime };
  } catch (err) {
    await fh.close();
    throw err;
  }
}

function describe(key: string, file: OpenObject): ObjectInfo {
  return {
    key,
    size: file.size,
    etag: file.trailer.sha256,
    contentType: file.trailer.contentType,
    metadata: file.trailer.metadata,
    lastModified: file.mtime,
    sha256: file.trailer.sha256,
  };
}

/** Bytes `start`..`end` (inclusive) of an open file as a stream; closes the handle at the end unless told not to. */
function bodyStream(fh: FileHandle, start: number, end: number, autoClose = true): Readable {
  if (end < start) {
    if (autoClose) void fh.close();
    return Readable.from([]);
  }
  return fh.createReadStream({ start, end, autoClose, highWaterMark: 256 * 1024 });
}

function encodeTrailer(trailer: Trailer): Buffer {
  const json = Buffer.from(JSON.stringify(trailer), "utf8");
  const footer = Buffer.alloc(FOOTER_BYTES);
  footer.writeUInt32BE(json.length, 0);
  MAGIC.copy(footer, 4);
  return Buffer.concat([json, footer]);
}

function encodeSegment(segment: string): string {
  return segment.replaceAll("%", "%25");
}

function decodeSegment(name: string): string {
  return name.replaceAll("%25", "%");
}

/**
 * Keys under `folder` (whose keys begin with `keyPrefix`) that start with `prefix` and sort after
 * `after`, in key order. Entries are ordered by their segment, plus "/" for folders: every key below
 * a folder begins with that, so the walk yields keys in order and can skip whole folders.
 */
async function* walk(folder: string, keyPrefix: string, prefix: string, after: string | undefined): AsyncGenerator<string> {
  let entries;
  try {
    entries = await readdir(folder, { withFileTypes: true });
  } catch (err) {
    if (isCode(err, "ENOENT")) return;
    throw err;
  }
  const items = entries.flatMap((e) => {
    if (e.isDirectory() && !e.name.endsWith("%")) return [{ name: e.name, key: keyPrefix + decodeSegment(e.name) + "/", folder: true }];
    if (e.isFile() && e.name.endsWith("%")) return [{ name: e.name, key: keyPrefix + decodeSegment(e.name.slice(0, -1)), folder: false }];
    return [];
  });
  items.sort((a, b) => compareKeys(a.key, b.key));
  for (const item of items) {
    if (item.folder) {
      if (!item.key.startsWith(prefix) && !prefix.startsWith(item.key)) continue;
      if (after !== undefined && !after.startsWith(item.key) && compareKeys(item.key, after) < 0) continue;
      yield* walk(path.join(folder, item.name), item.key, prefix, after);
    } else {
      if (!item.key.startsWith(prefix)) continue;
      if (after !== undefined && compareKeys(item.key, after) <= 0) continue;
      yield item.key;
    }
  }
}

/** Removes what a crash left in `tmp/` (files idle for an hour: a live upload writes more often). */
async function sweepTmp(tmpDir: string): Promise<void> {
  const cutoff = Date.now() - TMP_STALE_MS;
  for (const name of await readdir(tmpDir)) {
    const file = path.join(tmpDir, name);
    const info = await stat(file).catch(() => undefined);
    if (info && info.mtimeMs < cutoff) await rm(file, { force: true, recursive: true });
  }
}

async function writeDurably(file: string, text: string): Promise<void> {
  const fh = await open(file, "wx");
  try {
    await writeAll(fh, Buffer.from(text, "utf8"));
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function writeAll(fh: FileHandle, data: Buffer): Promise<void> {
  for (let offset = 0; offset < data.length; ) {
    const { bytesWritten } = await fh.write(data, offset, data.length - offset);
    offset += bytesWritten;
  }
}

async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(Math.max(length, 0));
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buffer, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return buffer.subarray(0, done);
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function isCode(err: unknown, code: string): boolean {
  return typeof err === "object" && err !== null && (err as { code?: unknown }).code === code;
}
