import { createHash, type Hash } from "node:crypto";
import { failedPrecondition, invalidArgument, outOfRange, tooLarge } from "../../core/errors.js";
import {
  DEFAULT_PRESIGN_SECONDS,
  MAX_PARTS,
  MAX_PRESIGN_SECONDS,
  type ByteRange,
  type CompletedPart,
  type ListOptions,
  type MultipartOptions,
  type ObjectBody,
  type PresignGetOptions,
  type PutOptions,
} from "./object-store.js";

/** The rules every object store applies to its arguments, so all of them accept and refuse the same things. */

const MAX_KEY_BYTES = 1024;
const MAX_METADATA_BYTES = 2048;
const DEFAULT_CONTENT_TYPE = "application/octet-stream";
/** Metadata name under which a store keeps the SHA-256 it knows; callers may not set it themselves. */
export const SHA256_METADATA = "sha256";

const CONTROL = /[\u0000-\u001f\u007f]/;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;
const METADATA_NAME = /^[a-z0-9][a-z0-9-]{0,63}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

function refuse(field: string, description: string): never {
  throw invalidArgument([{ field, description }]);
}

/** Refuses a key that is not 1-1024 UTF-8 bytes of "/"-separated, non-empty segments other than "." and "..", free of control characters. */
export function checkObjectKey(key: unknown, field = "key"): string {
  if (typeof key !== "string" || key === "") refuse(field, "must be a non-empty string");
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) refuse(field, `must be at most ${MAX_KEY_BYTES} bytes of UTF-8`);
  if (CONTROL.test(key)) refuse(field, "must not contain control characters");
  if (key.startsWith("/")) refuse(field, 'must not start with "/"');
  for (const segment of key.split("/")) {
    if (segment === "") refuse(field, 'must not end with "/" nor contain "//"');
    if (segment === "." || segment === "..") refuse(field, 'must not contain "." or ".." segments');
  }
  return key;
}

/** Refuses a prefix no valid key could start with (a control character, a leading "/", over 1024 bytes). */
export function checkPrefix(prefix: string | undefined): string {
  if (prefix === undefined || prefix === "") return "";
  if (Buffer.byteLength(prefix) > MAX_KEY_BYTES || CONTROL.test(prefix) || prefix.startsWith("/")) {
    refuse("prefix", "must be the start of a valid key");
  }
  return prefix;
}

/** The content type and metadata of a new object, checked, with the default content type. */
export function checkDescription(options: MultipartOptions = {}): { contentType: string; metadata: Record<string, string> } {
  const contentType = options.contentType === undefined || options.contentType === "" ? DEFAULT_CONTENT_TYPE : options.contentType;
  if (!PRINTABLE_ASCII.test(contentType) || contentType.length > 255) refuse("content_type", "must be at most 255 printable ASCII characters");
  const metadata: Record<string, string> = {};
  let bytes = 0;
  for (const [name, value] of Object.entries(options.metadata ?? {})) {
    if (!METADATA_NAME.test(name)) refuse(`metadata.${name}`, "names are 1-64 lower-case letters, digits and '-'");
    if (name === SHA256_METADATA) refuse(`metadata.${name}`, "is reserved for the checksum the store keeps");
    if (typeof value !== "string" || !PRINTABLE_ASCII.test(value)) refuse(`metadata.${name}`, "values are printable ASCII");
    bytes += name.length + value.length;
    metadata[name] = value;
  }
  if (bytes > MAX_METADATA_BYTES) refuse("metadata", `must be at most ${MAX_METADATA_BYTES} bytes in all`);
  return { contentType, metadata };
}

/** Put options checked: expected size and checksum well formed, limit positive. */
export function checkPutOptions(options: PutOptions = {}): PutOptions & ReturnType<typeof checkDescription> {
  const described = checkDescription(options);
  if (options.expectedSize !== undefined && !(Number.isSafeInteger(options.expectedSize) && options.expectedSize >= 0)) {
    refuse("expected_size", "must be a whole number of bytes");
  }
  if (options.expectedSha256 !== undefined && !SHA256_HEX.test(options.expectedSha256)) {
    refuse("expected_sha256", "must be 64 lower-case hex digits");
  }
  if (options.maxBytes !== undefined && !(Number.isSafeInteger(options.maxBytes) && options.maxBytes >= 0)) {
    refuse("max_bytes", "must be a whole number of bytes");
  }
  return { ...options, ...described };
}

/** Seconds a presigned URL lives: DEFAULT_PRESIGN_SECONDS unless asked, refused outside 1..MAX_PRESIGN_SECONDS. */
export function presignSeconds(expiresInSeconds: number | undefined): number {
  if (expiresInSeconds === undefined) return DEFAULT_PRESIGN_SECONDS;
  if (!Number.isInteger(expiresInSeconds) || expiresInSeconds < 1 || expiresInSeconds > MAX_PRESIGN_SECONDS) {
    refuse("expires_in_seconds", `must be a whole number of seconds from 1 to ${MAX_PRESIGN_SECONDS} (7 days)`);
  }
  return expiresInSeconds;
}

/** The response headers a presigned GET may set, checked. */
export function checkPresignGet(options: PresignGetOptions = {}): { seconds: number; contentDisposition?: string; contentType?: string } {
  const seconds = presignSeconds(options.expiresInSeconds);
  for (const [field, value] of [["content_disposition", options.contentDisposition], ["content_type", options.contentType]] as const) {
    if (value !== undefined && (!PRINTABLE_ASCII.test(value) || value.length > 1024)) {
      refuse(field, "must be at most 1024 printable ASCII characters (RFC 5987-encode non-ASCII names)");
    }
  }
  return {
    seconds,
    ...(options.contentDisposition !== undefined ? { contentDisposition: options.contentDisposition } : {}),
    ...(options.contentType !== undefined ? { contentType: options.contentType } : {}),
  };
}

/** A byte range checked: whole numbers from 0, the end (when given) not before the start. */
export function checkRange(range: ByteRange): ByteRange {
  if (!Number.isSafeInteger(range.start) || range.start < 0) refuse("range.start", "must be a byte offset from 0");
  if (range.end !== undefined && !(Number.isSafeInteger(range.end) && range.end >= range.start)) {
    refuse("range.end", "must be a byte offset not before the start");
  }
  return range;
}

/** The inclusive bytes a checked range covers in an object of `size` bytes; OUT_OF_RANGE when it starts at or past the end. */
export function clampRange(range: ByteRange, size: number, key: string): { start: number; end: number } {
  if (range.start >= size) throw outOfRange(`range starts at byte ${range.start} of ${JSON.stringify(key)}, which has ${size}`);
  return { start: range.start, end: Math.min(range.end ?? size - 1, size - 1) };
}

export function checkPartNumber(partNumber: number): number {
  if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > MAX_PARTS) refuse("part_number", `must be from 1 to ${MAX_PARTS}`);
  return partNumber;
}

export function checkUploadId(uploadId: unknown): string {
  if (typeof uploadId !== "string" || uploadId === "" || uploadId.length > 1024 || !PRINTABLE_ASCII.test(uploadId)) {
    refuse("upload_id", "must be the id createMultipartUpload returned");
  }
  return uploadId;
}

/** The parts of a completion, checked: at least one, ascending part numbers, etags without their quotes. */
export function checkCompletedParts(parts: readonly CompletedPart[]): CompletedPart[] {
  if (parts.length === 0) refuse("parts", "must name at least one part");
  let previous = 0;
  return parts.map((part, i) => {
    checkPartNumber(part.partNumber);
    if (part.partNumber <= previous) {
      throw failedPrecondition("parts must be listed in ascending part number", {
        type: "PART_ORDER",
        subject: `parts[${i}]`,
        description: `part ${part.partNumber} follows part ${previous}`,
      });
    }
    previous = part.partNumber;
    return { partNumber: part.partNumber, etag: unquoteEtag(part.etag) };
  });
}

function unquoteEtag(etag: string): string {
  return etag.replace(/^(W\/)?"/, "").replace(/"$/, "");
}

/** A list request checked: prefix, the key the cursor stands for, limit 1-1000. */
export function checkListOptions(options: ListOptions = {}): { prefix: string; after?: string; limit: number } {
  const prefix = checkPrefix(options.prefix);
  const limit = options.limit ?? 1000;
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) refuse("limit", "must be from 1 to 1000");
  if (options.cursor === undefined || options.cursor === "") return { prefix, limit };
  let after: string;
  try {
    after = Buffer.from(options.cursor, "base64url").toString("utf8");
    checkObjectKey(after);
  } catch {
    refuse("cursor", "must be a nextCursor returned by list");
  }
  return { prefix, after, limit };
}

/** The cursor that resumes a listing after `key`. */
export function cursorAfter(key: string): string {
  return Buffer.from(key, "utf8").toString("base64url");
}

/** Orders keys as S3 lists them: by the bytes of their UTF-8. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/**
 * Counts and hashes a body as it passes, stopping it at `maxBytes`; `finish()` then checks the
 * expected size and checksum. Every store's put goes through one, so all refuse alike.
 */
export class BodyMeter {
  size = 0;
  readonly #hash: Hash = createHash("sha256");
  #sha256: string | undefined;

  constructor(private readonly options: Pick<PutOptions, "expectedSize" | "expectedSha256" | "maxBytes">) {}

  /** Counts one chunk; RESOURCE_EXHAUSTED as soon as the body passes `maxBytes` (or the expected size). */
  add(chunk: Uint8Array): void {
    this.size += chunk.length;
    const { maxBytes, expectedSize } = this.options;
    if (maxBytes !== undefined && this.size > maxBytes) throw tooLarge(`object body larger than ${maxBytes} bytes`);
    if (expectedSize !== undefined && this.size > expectedSize) throw sizeMismatch(expectedSize, `more than ${expectedSize}`);
    this.#hash.update(chunk);
  }

  /** The body's SHA-256 once it has ended; FAILED_PRECONDITION when it is not the size or checksum expected. */
  finish(): string {
    this.#sha256 ??= this.#hash.digest("hex");
    const { expectedSize, expectedSha256 } = this.options;
    if (expectedSize !== undefined && this.size !== expectedSize) throw sizeMismatch(expectedSize, String(this.size));
    if (expectedSha256 !== undefined && this.#sha256 !== expectedSha256) {
      throw failedPrecondition("object body does not match its SHA-256", {
        type: "CHECKSUM",
        subject: "sha256",
        description: `expected ${expectedSha256}, got ${this.#sha256}`,
      });
    }
    return this.#sha256;
  }
}

function sizeMismatch(expected: number, got: string) {
  return failedPrecondition("object body is not the size it was declared to be", {
    type: "SIZE",
    subject: "size",
    description: `expected ${expected} bytes, got ${got}`,
  });
}

/** The chunks of a body, as Buffers (a Readable in string mode included). */
export async function* chunksOf(body: ObjectBody): AsyncGenerator<Buffer> {
  if (body instanceof Uint8Array) {
    yield Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    return;
  }
  for await (const chunk of body as AsyncIterable<Uint8Array | string>) {
    yield typeof chunk === "string" ? Buffer.from(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  }
}
