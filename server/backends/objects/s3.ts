import http from "node:http";
import https from "node:https";
import type { Readable } from "node:stream";
import { ConnectError } from "@connectrpc/connect";
import { Client, CopyDestinationOptions, CopySourceOptions } from "minio";
import { failedPrecondition, notFound, outOfRange, unavailable } from "../../core/errors.js";
import {
  BodyMeter,
  SHA256_METADATA,
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
  compareKeys,
  cursorAfter,
  presignSeconds,
} from "./object-rules.js";
import type {
  CompletedPart,
  GetOptions,
  ListOptions,
  MultipartOptions,
  MultipartUpload,
  ObjectBody,
  ObjectInfo,
  ObjectPage,
  ObjectRead,
  ObjectStore,
  PresignedUrl,
  PresignGetOptions,
  PresignOptions,
  PutOptions,
  StoredObject,
} from "./object-store.js";
import type { S3Target } from "./s3-url.js";

export interface S3StoreOptions {
  /**
   * Size of the parts a streamed put is cut into, at least 5 MiB; default 8 MiB. A put holds at most two
   * parts in memory (one uploading, the next filling), so this bounds its memory.
   */
  readonly partSize?: number;
}

const META = "x-amz-meta-";
const DEFAULT_PART_BYTES = 8 * 1024 * 1024;
const RETRY_MS = 1000;

/**
 * An S3-compatible store (AWS S3, MinIO, Aliyun OSS, Swift's s3api) through the `minio` client,
 * path-style, in one bucket, created when missing. Streams are uploaded as multipart uploads of our
 * own (not the client's putObject, which buffers a stream of unknown length whole and resumes any
 * unfinished upload to the same key, old content type included).
 */
export async function openS3ObjectStore(target: S3Target, options: S3StoreOptions = {}): Promise<ObjectStore> {
  const partSize = options.partSize ?? DEFAULT_PART_BYTES;
  if (!Number.isInteger(partSize) || partSize < 5 * 1024 * 1024) throw new Error("S3 part size must be at least 5 MiB");
  const agent = target.useSSL ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true });
  const client = new Client({
    endPoint: target.host,
    port: target.port,
    useSSL: target.useSSL,
    accessKey: target.accessKey,
    secretKey: target.secretKey,
    region: target.region,
    pathStyle: true,
    transportAgent: agent,
    // callers retry UNAVAILABLE themselves; the client's own retry would also re-send consumed streams
    retryOptions: { disableRetry: true },
  });
  const bucket = target.bucket;
  try {
    if (!(await client.bucketExists(bucket))) {
      await client.makeBucket(bucket, target.region).catch((err: unknown) => {
        if (s3Code(err) !== "BucketAlreadyOwnedByYou") throw err;
      });
    }
  } catch (err) {
    agent.destroy();
    throw new Error(`PERSISTENCE_S3_URL: cannot use bucket ${JSON.stringify(bucket)} at ${target.host}:${target.port}: ${describeFailure(err)}`);
  }

  const fail = (err: unknown, subject: { key?: string; uploadId?: string } = {}): never => {
    throw translate(err, subject);
  };

  const headersFor = (description: { contentType: string; metadata: Record<string, string> }, sha256?: string): Record<string, string> => {
    const headers: Record<string, string> = { "Content-Type": description.contentType };
    for (const [name, value] of Object.entries(description.metadata)) headers[META + name] = value;
    if (sha256 !== undefined) headers[META + SHA256_METADATA] = sha256;
    return headers;
  };

  const stat = async (key: string): Promise<ObjectInfo> => {
    try {
      const res = await client.makeRequestAsync({ method: "HEAD", bucketName: bucket, objectName: key }, "", [200]);
      res.resume();
      return infoFromHeaders(key, res.headers);
    } catch (err) {
      return fail(err, { key });
    }
  };

  /** A body of one part at most goes in one PUT; a longer one in parts, reading the next while one uploads. */
  const putStream = async (key: string, body: ObjectBody, checked: ReturnType<typeof checkPutOptions>): Promise<StoredObject> => {
    const meter = new BodyMeter(checked);
    const parts = partsOf(chunksOf(body), partSize, meter);
    // one variable holds the part in hand, so a part uploaded is a part released
    let part: Buffer = (await parts.next()).value ?? Buffer.alloc(0);
    if (part.length < partSize) {
      const rest = await parts.next(); // ends the generator, which checks size and checksum
      if (!rest.done) throw new Error("a short part before the end of the body");
      const sha256 = meter.finish();
      const uploaded = await client.putObject(bucket, key, part, part.length, headersFor(checked, sha256)).catch((err: unknown) => fail(err, { key }));
      return { key, size: meter.size, etag: uploaded.etag, sha256 };
    }
    const uploadId = await client
      .initiateNewMultipartUpload(bucket, key, headersFor(checked, checked.expectedSha256))
      .catch((err: unknown) => fail(err, { key }));
    try {
      const etags: { part: number; etag: string }[] = [];
      for (let partNumber = 1; ; partNumber++) {
        const following = parts.next();
        following.catch(() => {}); // awaited below, after this part's upload
        const uploaded = await client.uploadPart({ bucketName: bucket, objectName: key, uploadID: uploadId, partNumber, headers: { "Content-Length": part.length } }, part);
        etags.push({ part: partNumber, etag: uploaded.etag });
        const next = await following;
        if (next.done) break;
        part = next.value;
      }
      const sha256 = meter.finish();
      const done = await client.completeMultipartUpload(bucket, key, uploadId, etags);
      return { key, size: meter.size, etag: done.etag, sha256 };
    } catch (err) {
      await parts.return(undefined).catch(() => {});
      await client.abortMultipartUpload(bucket, key, uploadId).catch(() => {});
      return fail(err, { key });
    }
  };

  const store: ObjectStore = {
    name: "objects",
    kind: "s3",

    async ping() {
      if (!(await client.bucketExists(bucket).catch((err: unknown) => fail(err)))) throw notFound("bucket", bucket);
    },

    async close() {
      agent.destroy();
    },

    async put(key: string, body: ObjectBody, options?: PutOptions): Promise<StoredObject> {
      checkObjectKey(key);
      return putStream(key, body, checkPutOptions(options));
    },

    async get(key: string, options: GetOptions = {}): Promise<ObjectRead> {
      checkObjectKey(key);
      let stream: Readable;
      try {
        if (options.range) {
          const { start, end } = checkRange(options.range);
          // getPartialObject sends no Range for offset 0 and length 0, so the whole-object reply is handled below
          stream = await client.getPartialObject(bucket, key, start, end === undefined ? 0 : end - start + 1);
        } else {
          stream = await client.getObject(bucket, key);
        }
      } catch (err) {
        return fail(err, { key });
      }
      const headers = (stream as http.IncomingMessage).headers;
      const info = infoFromHeaders(key, headers);
      if (!options.range) return { info, body: stream };
      const sent = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(String(headers["content-range"] ?? ""));
      if (!sent) {
        // no Range was sent (a range from byte 0 to the end): the whole object came
        if (info.size === 0) {
          stream.destroy();
          throw outOfRange(`range starts at byte 0 of ${JSON.stringify(key)}, which has 0`);
        }
        return { info, range: { start: 0, end: info.size - 1 }, body: stream };
      }
      return { info: { ...info, size: Number(sent[3]) }, range: { start: Number(sent[1]), end: Number(sent[2]) }, body: stream };
    },

    stat(key: string): Promise<ObjectInfo> {
      checkObjectKey(key);
      return stat(key);
    },

    async delete(key: string): Promise<void> {
      checkObjectKey(key);
      await client.removeObject(bucket, key).catch((err: unknown) => {
        if (s3Code(err) !== "NoSuchKey") fail(err, { key });
      });
    },

    async deleteMany(keys: readonly string[]): Promise<void> {
      keys.forEach((k, i) => checkObjectKey(k, `keys[${i}]`));
      for (let i = 0; i < keys.length; i += 1000) {
        const failures = await client.removeObjects(bucket, [...keys.slice(i, i + 1000)]).catch((err: unknown) => fail(err));
        // the client's typings wrap each failure in {Error}; its parser returns the Error elements themselves
        const real = failures
          .map((f) => (f && "Error" in f ? f.Error : (f as { Code?: string; Message?: string; Key?: string } | null | undefined)))
          .filter((e) => e?.Code !== undefined && e.Code !== "NoSuchKey");
        const first = real[0];
        if (first) fail(Object.assign(new Error(first.Message ?? "delete failed"), { code: first.Code }), { key: first.Key ?? "" });
      }
    },

    async list(options?: ListOptions): Promise<ObjectPage> {
      const { prefix, after, limit } = checkListOptions(options);
      const page = await client.listObjectsV2Query(bucket, prefix, "", "", limit, after ?? "").catch((err: unknown) => fail(err));
      const items = page.objects
        .filter((o): o is typeof o & { name: string } => typeof o.name === "string")
        .map((o) => ({ key: o.name, size: o.size, etag: o.etag.replace(/^"|"$/g, ""), lastModified: new Date(o.lastModified) }));
      const last = items[items.length - 1];
      return page.isTruncated && last ? { items, nextCursor: cursorAfter(last.key) } : { items };
    },

    async copy(fromKey: string, toKey: string): Promise<ObjectInfo> {
      checkObjectKey(fromKey, "from_key");
      checkObjectKey(toKey, "to_key");
      await client
        .copyObject(new CopySourceOptions({ Bucket: bucket, Object: fromKey }), new CopyDestinationOptions({ Bucket: bucket, Object: toKey }))
        .catch((err: unknown) => fail(err, { key: fromKey }));
      return stat(toKey);
    },

    async presignGet(key: string, options?: PresignGetOptions): Promise<PresignedUrl> {
      checkObjectKey(key);
      const { seconds, contentDisposition, contentType } = checkPresignGet(options);
      const response: Record<string, string> = {};
      if (contentDisposition !== undefined) response["response-content-disposition"] = contentDisposition;
      if (contentType !== undefined) response["response-content-type"] = contentType;
      const url = await client.presignedGetObject(bucket, key, seconds, response).catch((err: unknown) => fail(err, { key }));
      return { url, method: "GET", expiresAt: new Date(Date.now() + seconds * 1000) };
    },

    async presignPut(key: string, options?: PresignOptions): Promise<PresignedUrl> {
      checkObjectKey(key);
      const seconds = presignSeconds(options?.expiresInSeconds);
      const url = await client.presignedPutObject(bucket, key, seconds).catch((err: unknown) => fail(err, { key }));
      return { url, method: "PUT", expiresAt: new Date(Date.now() + seconds * 1000) };
    },

    async createMultipartUpload(key: string, options?: MultipartOptions): Promise<string> {
      checkObjectKey(key);
      return client.initiateNewMultipartUpload(bucket, key, headersFor(checkDescription(options))).catch((err: unknown) => fail(err, { key }));
    },

    async presignUploadPart(key: string, uploadId: string, partNumber: number, options?: PresignOptions): Promise<PresignedUrl> {
      checkObjectKey(key);
      checkUploadId(uploadId);
      checkPartNumber(partNumber);
      const seconds = presignSeconds(options?.expiresInSeconds);
      const url = await client
        .presignedUrl("PUT", bucket, key, seconds, { partNumber: String(partNumber), uploadId })
        .catch((err: unknown) => fail(err, { key, uploadId }));
      return { url, method: "PUT", expiresAt: new Date(Date.now() + seconds * 1000) };
    },

    async completeMultipartUpload(key: string, uploadId: string, parts: readonly CompletedPart[]): Promise<ObjectInfo> {
      checkObjectKey(key);
      checkUploadId(uploadId);
      const wanted = checkCompletedParts(parts).map((p) => ({ part: p.partNumber, etag: p.etag }));
      await client.completeMultipartUpload(bucket, key, uploadId, wanted).catch((err: unknown) => fail(err, { key, uploadId }));
      return stat(key);
    },

    async abortMultipartUpload(key: string, uploadId: string): Promise<void> {
      checkObjectKey(key);
      checkUploadId(uploadId);
      await client.abortMultipartUpload(bucket, key, uploadId).catch((err: unknown) => {
        // gone already: aborted, or completed (for which Swift's s3api answers NoSuchKey)
        const code = s3Code(err);
        if (code !== "NoSuchUpload" && code !== "NoSuchKey") fail(err, { key, uploadId });
      });
    },

    async listMultipartUploads(options: { readonly prefix?: string } = {}): Promise<readonly MultipartUpload[]> {
      const prefix = checkPrefix(options.prefix);
      const uploads: MultipartUpload[] = [];
      let marker: { key: string; uploadId: string } | undefined;
      for (;;) {
        // The client's listIncompleteUploads always sends `delimiter=`, which Swift's s3api reads as a
        // delimiter matching everywhere (it answers one empty common prefix): ask without one.
        const query = [`prefix=${sigV4Escape(prefix)}`, "max-uploads=1000"];
        if (marker) query.push(`key-marker=${sigV4Escape(marker.key)}`, `upload-id-marker=${sigV4Escape(marker.uploadId)}`);
        const res = await client.makeRequestAsync({ method: "GET", bucketName: bucket, query: ["uploads", ...query.sort()].join("&") }, "", [200]).catch((err: unknown) => fail(err));
        let xml = "";
        res.setEncoding("utf8");
        for await (const chunk of res) xml += chunk as string;
        const page = parseUploads(xml);
        uploads.push(...page.uploads);
        const last = page.uploads[page.uploads.length - 1];
        // the last upload of the page, not Next*Marker: Swift leaves those empty on a truncated page
        if (!page.truncated || !last) break;
        marker = { key: last.key, uploadId: last.uploadId };
      }
      return uploads.sort((a, b) => compareKeys(a.key, b.key) || a.initiated.getTime() - b.initiated.getTime());
    },
  };
  return store;
}

/**
 * The parts of a body: `size` bytes each but the last (never empty unless the body is). Each part is
 * one buffer the chunks are copied into, so a part and the chunks it came from are never alive at
 * once. The first part grows as bytes come (a short body does not cost a whole part); once the body
 * is known to be long, parts are allocated whole.
 */
async function* partsOf(chunks: AsyncIterable<Buffer>, size: number, meter: BodyMeter): AsyncGenerator<Buffer> {
  let part: Buffer = Buffer.allocUnsafe(Math.min(size, 64 * 1024));
  let filled = 0;
  let yielded = false;
  for await (const chunk of chunks) {
    meter.add(chunk);
    for (let offset = 0; offset < chunk.length; ) {
      // (a helper, not a local: a suspended generator keeps its locals, and so the first part, alive)
      if (filled === part.length) part = grown(part, Math.min(size, part.length * 2));
      const n = Math.min(part.length - filled, chunk.length - offset);
      chunk.copy(part, filled, offset, offset + n);
      filled += n;
      offset += n;
      if (filled === size) {
        yield part;
        yielded = true;
        part = Buffer.allocUnsafe(size);
        filled = 0;
      }
    }
  }
  meter.finish();
  if (filled > 0 || !yielded) yield part.subarray(0, filled);
}

function grown(buffer: Buffer, length: number): Buffer {
  const larger = Buffer.allocUnsafe(length);
  buffer.copy(larger);
  return larger;
}

function infoFromHeaders(key: string, headers: http.IncomingHttpHeaders): ObjectInfo {
  const metadata: Record<string, string> = {};
  let sha256: string | undefined;
  for (const [name, value] of Object.entries(headers)) {
    if (!name.startsWith(META) || typeof value !== "string") continue;
    const short = name.slice(META.length);
    if (short === SHA256_METADATA) sha256 = value;
    else metadata[short] = value;
  }
  return {
    key,
    size: Number(headers["content-length"] ?? 0),
    etag: String(headers.etag ?? "").replace(/^"|"$/g, ""),
    contentType: headers["content-type"] ?? "application/octet-stream",
    metadata,
    lastModified: new Date(String(headers["last-modified"] ?? 0)),
    ...(sha256 !== undefined ? { sha256 } : {}),
  };
}

/** The uploads in a ListMultipartUploads reply (a flat, fixed document: read without an XML library). */
function parseUploads(xml: string): { uploads: MultipartUpload[]; truncated: boolean } {
  const field = (block: string, name: string): string => unescapeXml(new RegExp(`<${name}>([^<]*)</${name}>`).exec(block)?.[1] ?? "");
  const uploads = [...xml.matchAll(/<Upload>([\s\S]*?)<\/Upload>/g)].map((m) => {
    const block = m[1] ?? "";
    return { key: field(block, "Key"), uploadId: field(block, "UploadId"), initiated: new Date(field(block, "Initiated")) };
  });
  return { uploads, truncated: /<IsTruncated>true<\/IsTruncated>/.test(xml) };
}

function unescapeXml(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos);/gi, (_, entity: string) => {
    const named: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };
    if (entity.startsWith("#x") || entity.startsWith("#X")) return String.fromCodePoint(parseInt(entity.slice(2), 16));
    if (entity.startsWith("#")) return String.fromCodePoint(Number(entity.slice(1)));
    return named[entity.toLowerCase()] ?? "";
  });
}

/** A query value as SigV4 canonicalises it (RFC 3986: encodeURIComponent leaves !'()* alone). */
function sigV4Escape(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function s3Code(err: unknown): string | undefined {
  return typeof err === "object" && err !== null ? ((err as { code?: unknown }).code as string | undefined) : undefined;
}

const UNREACHABLE = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "EHOSTUNREACH", "ENOTFOUND", "EAI_AGAIN", "ServiceUnavailable", "SlowDown", "InternalError"]);

/** A store failure as the service's error: what the caller can act on gets its code, the rest passes on as is. */
function translate(err: unknown, subject: { key?: string; uploadId?: string }): unknown {
  if (err instanceof ConnectError) return err; // already ours (a refused body)
  const code = s3Code(err);
  const message = err instanceof Error ? err.message : String(err);
  if (code === "NoSuchKey" || code === "NotFound") return notFound("object", subject.key ?? "");
  if (code === "NoSuchUpload") return notFound("upload", subject.uploadId ?? "");
  if (code === "NoSuchBucket") return unavailable("the object store's bucket is gone", RETRY_MS);
  if (code === "InvalidRange") return outOfRange(`range starts past the end of ${JSON.stringify(subject.key ?? "")}`);
  if (code === "InvalidPart" || code === "InvalidPartOrder" || code === "EntityTooSmall") {
    return failedPrecondition("the parts do not make up the upload", { type: "PART", subject: "parts", description: `${code}: ${message}` });
  }
  if ((code !== undefined && UNREACHABLE.has(code)) || /Retryable HTTP status: 5\d\d/.test(message)) {
    return unavailable(`the object store is unreachable or failing (${code ?? "HTTP 5xx"})`, RETRY_MS);
  }
  return err;
}

function describeFailure(err: unknown): string {
  const code = s3Code(err);
  if (code === "SignatureDoesNotMatch" || code === "InvalidAccessKeyId" || code === "AccessDenied") return `the store refused the credentials (${code})`;
  return code ?? (err instanceof Error ? err.message : String(err));
}
