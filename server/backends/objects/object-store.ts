import type { Readable } from "node:stream";
import type { Backend } from "../backend.js";

/**
 * The `objects` role: file contents by key, in a local directory (the embedded default) or an
 * S3-compatible store. Metadata about files (names, owners, states) is the files domain's, in SQL;
 * this role only keeps bytes, a content type, a little user metadata and checksums.
 *
 * Keys are opaque strings checked once by `checkObjectKey` (object-rules.ts): 1-1024 UTF-8 bytes,
 * segments separated by "/", no empty, "." or ".." segment (so no leading, trailing or doubled "/"),
 * no control characters. Listing order is the byte order of the keys' UTF-8, as in S3.
 *
 * Errors are ConnectErrors from server/core/errors.ts: NOT_FOUND for a missing object or upload,
 * INVALID_ARGUMENT for a bad key or option, FAILED_PRECONDITION for a body that is not what the caller
 * said it would be (size, SHA-256) or parts that do not fit together, RESOURCE_EXHAUSTED for a body
 * over `maxBytes`, OUT_OF_RANGE for a range past the end, PERMISSION_DENIED for a refused signed URL,
 * UNAVAILABLE (with a retry delay) when the store cannot be reached.
 */
export interface ObjectStore extends Backend {
  readonly name: "objects";
  /** "local" (a directory) or "s3". */
  readonly kind: "local" | "s3";

  /**
   * Stores `body` under `key`, replacing any object there. A stream is read once, in bounded memory,
   * whatever its length (which need not be known). Readers see the old object or the whole new one,
   * never a part; when the put fails or is refused, nothing is left behind and the old object stays.
   */
  put(key: string, body: ObjectBody, options?: PutOptions): Promise<StoredObject>;

  /** The object's bytes (or `range` of them) as a stream, with its description. NOT_FOUND when absent. */
  get(key: string, options?: GetOptions): Promise<ObjectRead>;

  /** The object's description without its bytes. NOT_FOUND when absent. */
  stat(key: string): Promise<ObjectInfo>;

  /** Removes the object; removing one that is not there succeeds (so retries are safe). */
  delete(key: string): Promise<void>;

  /** Removes every key given (any number; absent ones are fine), in as few calls as the store allows. */
  deleteMany(keys: readonly string[]): Promise<void>;

  /** One page of objects whose key starts with `prefix`, in key order; pass `nextCursor` back for the next. */
  list(options?: ListOptions): Promise<ObjectPage>;

  /** Copies an object to another key inside the store, without the bytes passing through this process. */
  copy(fromKey: string, toKey: string): Promise<ObjectInfo>;

  /** A URL that lets whoever holds it GET the object until it expires (a browser download, a 302 target). */
  presignGet(key: string, options?: PresignGetOptions): Promise<PresignedUrl>;

  /**
   * A URL that lets whoever holds it PUT one object (the request body) under `key` until it expires.
   * The uploader's Content-Type header becomes the object's content type.
   */
  presignPut(key: string, options?: PresignOptions): Promise<PresignedUrl>;

  /**
   * Starts a multipart upload to `key` (for large files, parts uploaded in parallel and retried one by
   * one). The object appears only at `completeMultipartUpload`. Returns the upload id.
   */
  createMultipartUpload(key: string, options?: MultipartOptions): Promise<string>;

  /**
   * A URL that lets whoever holds it PUT part `partNumber` (1-10000) of an upload; the reply's ETag
   * header is the part's etag, which `completeMultipartUpload` needs. Every part but the last must be
   * at least MIN_PART_BYTES. Uploading a part number again replaces that part.
   */
  presignUploadPart(key: string, uploadId: string, partNumber: number, options?: PresignOptions): Promise<PresignedUrl>;

  /**
   * Joins the named parts, in ascending part number, into the object at `key`. FAILED_PRECONDITION
   * when a part is missing, its etag differs, the order is wrong or a part but the last is too small;
   * NOT_FOUND when the upload is unknown (never started, or aborted). Completing a completed upload
   * again is NOT_FOUND on some stores and answers the same object on others (Swift's s3api).
   */
  completeMultipartUpload(key: string, uploadId: string, parts: readonly CompletedPart[]): Promise<ObjectInfo>;

  /** Drops an upload and its parts; an unknown or finished upload is fine. */
  abortMultipartUpload(key: string, uploadId: string): Promise<void>;

  /** Uploads started and neither completed nor aborted, oldest first within a key (for cleanup). */
  listMultipartUploads(options?: { readonly prefix?: string }): Promise<readonly MultipartUpload[]>;
}

/** The smallest part of a multipart upload, but for the last one (S3's rule, kept by every store). */
export const MIN_PART_BYTES = 5 * 1024 * 1024;
/** The largest part of a multipart upload. */
export const MAX_PART_BYTES = 5 * 1024 * 1024 * 1024;
/** The most parts one multipart upload may have. */
export const MAX_PARTS = 10_000;
/** Expiry of a presigned URL when none is asked for: 15 minutes. */
export const DEFAULT_PRESIGN_SECONDS = 15 * 60;
/** The longest expiry of a presigned URL: 7 days (S3's SigV4 limit). */
export const MAX_PRESIGN_SECONDS = 7 * 24 * 3600;

/** Bytes to store: a buffer, or any stream of chunks (a Node Readable, an HTTP request, a generator). */
export type ObjectBody = Uint8Array | AsyncIterable<Uint8Array>;

export interface PutOptions {
  /** MIME type kept with the object; default application/octet-stream. */
  readonly contentType?: string;
  /** User metadata: names of lower-case letters, digits and "-", printable ASCII values, 2 KiB in all. */
  readonly metadata?: Readonly<Record<string, string>>;
  /** When set, a body of any other length is refused with FAILED_PRECONDITION and nothing is stored. */
  readonly expectedSize?: number;
  /** When set (lower-case hex), a body with another SHA-256 is refused with FAILED_PRECONDITION and nothing is stored. */
  readonly expectedSha256?: string;
  /** When set, reading stops as soon as the body passes this many bytes: RESOURCE_EXHAUSTED, nothing stored. */
  readonly maxBytes?: number;
}

/** What a put stored. */
export interface StoredObject {
  readonly key: string;
  readonly size: number;
  readonly etag: string;
  /** SHA-256 of the bytes, lower-case hex, computed as they passed. */
  readonly sha256: string;
}

/** A stored object's description. */
export interface ObjectInfo {
  readonly key: string;
  readonly size: number;
  /** Changes whenever the content does; opaque (S3: an MD5 or an MD5 of part MD5s; local: the SHA-256). */
  readonly etag: string;
  readonly contentType: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly lastModified: Date;
  /**
   * The SHA-256 the store keeps, lower-case hex: always on the local store; on S3 when the put knew it
   * before the upload began (a buffer, a stream under one part, or `expectedSha256`). Absent for objects
   * uploaded through presigned URLs to S3: hash them by reading them.
   */
  readonly sha256?: string;
}

export interface GetOptions {
  /** Only these bytes; the end is clamped to the object's last byte. */
  readonly range?: ByteRange;
}

/** Bytes `start` to `end`, both inclusive and counted from 0 (as in an HTTP Range header). `end` defaults to the last byte. */
export interface ByteRange {
  readonly start: number;
  readonly end?: number;
}

/** An object being read. */
export interface ObjectRead {
  /** The whole object's description (its `size` is the full size, not the range's). */
  readonly info: ObjectInfo;
  /** The bytes actually sent when a range was asked for, end clamped (for Content-Range). */
  readonly range?: { readonly start: number; readonly end: number };
  /** The bytes; read it to the end or destroy it. */
  readonly body: Readable;
}

export interface ListOptions {
  /** Only keys starting with this; default all. */
  readonly prefix?: string;
  /** Where the previous page ended (its `nextCursor`). */
  readonly cursor?: string;
  /** Most objects in the page, 1-1000; default 1000. */
  readonly limit?: number;
}

export interface ObjectPage {
  readonly items: readonly ObjectSummary[];
  /** Present when more objects may follow. */
  readonly nextCursor?: string;
}

/** An object as a listing shows it. */
export interface ObjectSummary {
  readonly key: string;
  readonly size: number;
  readonly etag: string;
  readonly lastModified: Date;
}

export interface PresignOptions {
  /** Seconds the URL works, 1 to MAX_PRESIGN_SECONDS; default DEFAULT_PRESIGN_SECONDS. */
  readonly expiresInSeconds?: number;
}

export interface PresignGetOptions extends PresignOptions {
  /** Content-Disposition the download is served with (printable ASCII: encode non-ASCII names per RFC 5987). */
  readonly contentDisposition?: string;
  /** Content-Type the download is served with instead of the stored one. */
  readonly contentType?: string;
}

/** A signed URL: send `method` to `url` before `expiresAt`, with no further credentials. */
export interface PresignedUrl {
  readonly url: string;
  readonly method: "GET" | "PUT";
  readonly expiresAt: Date;
}

export interface MultipartOptions {
  /** As for put. */
  readonly contentType?: string;
  /** As for put. */
  readonly metadata?: Readonly<Record<string, string>>;
}

/** A part as the uploader reported it: its number and the ETag its upload answered with (quotes allowed). */
export interface CompletedPart {
  readonly partNumber: number;
  readonly etag: string;
}

/** An upload started and not yet completed or aborted. */
export interface MultipartUpload {
  readonly key: string;
  readonly uploadId: string;
  readonly initiated: Date;
}
