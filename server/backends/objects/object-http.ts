import type { IncomingMessage, ServerResponse } from "node:http";
import { pipeline } from "node:stream/promises";
import { MAX_PART_BYTES, type ObjectInfo } from "./object-store.js";
import type { LocalDirectoryStore } from "./local-directory.js";

/** Serving objects over plain HTTP: Range headers, and the local store's presigned URLs. */

export { isLocalDirectoryStore } from "./local-directory.js";

/** The path under the service's public base URL where the local store's presigned tokens are served. */
export const LOCAL_PRESIGNED_PATH = "/objects";

/**
 * Reads a `Range` header against an object of `size` bytes (RFC 9110 §14): the inclusive bytes to
 * send, "unsatisfiable" (answer 416), or undefined to send the whole object (no header, a header
 * this does not understand, or several ranges, which a server may answer in full).
 */
export function parseRangeHeader(header: string | undefined, size: number): { start: number; end: number } | "unsatisfiable" | undefined {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return undefined;
  if (m[1] === "") {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return "unsatisfiable";
    return { start: Math.max(size - suffix, 0), end: size - 1 };
  }
  const start = Number(m[1]);
  if (m[2] !== "" && Number(m[2]) < start) return undefined;
  if (start >= size) return "unsatisfiable";
  return { start, end: m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1) };
}

export interface ServeLocalPresignedOptions {
  /** Largest body a presigned PUT may send: RESOURCE_EXHAUSTED past it, nothing stored. Default none (a part: MAX_PART_BYTES). */
  readonly maxBytes?: number;
}

/**
 * Answers one request for a local presigned URL, `token` being the path segment after
 * LOCAL_PRESIGNED_PATH. GET and HEAD send the object (Range, ETag, the signed Content-Disposition and
 * Content-Type); PUT stores the body as the object or the upload part the token names and answers 200
 * with its ETag. Refusals are thrown as ConnectErrors before anything is written (PERMISSION_DENIED for
 * a tampered, expired or wrong-method URL, NOT_FOUND, RESOURCE_EXHAUSTED, ...): the route renders them
 * as its other errors (403, 404, 413...).
 */
export async function serveLocalPresigned(
  store: LocalDirectoryStore,
  token: string,
  req: IncomingMessage,
  res: ServerResponse,
  options: ServeLocalPresignedOptions = {},
): Promise<void> {
  const method = (req.method ?? "GET").toUpperCase();
  const grant = store.verifyPresigned(token, method);
  if (grant.method === "PUT") {
    const limit = options.maxBytes;
    const stored =
      grant.uploadId !== undefined && grant.partNumber !== undefined
        ? await store.uploadPart(grant.key, grant.uploadId, grant.partNumber, req, { maxBytes: Math.min(limit ?? MAX_PART_BYTES, MAX_PART_BYTES) })
        : await store.put(grant.key, req, {
            contentType: headerValue(req.headers["content-type"]) ?? "application/octet-stream",
            ...(limit !== undefined ? { maxBytes: limit } : {}),
          });
    res.writeHead(200, { ETag: `"${stored.etag}"`, "Content-Length": "0" });
    res.end();
    return;
  }
  const info = await store.stat(grant.key);
  const range = parseRangeHeader(headerValue(req.headers.range), info.size);
  const headersOf = (described: ObjectInfo): Record<string, string> => ({
    "Content-Type": grant.contentType ?? described.contentType,
    ETag: `"${described.etag}"`,
    "Last-Modified": described.lastModified.toUTCString(),
    "Accept-Ranges": "bytes",
    ...(grant.contentDisposition !== undefined ? { "Content-Disposition": grant.contentDisposition } : {}),
  });
  if (range === "unsatisfiable") {
    res.writeHead(416, { ...headersOf(info), "Content-Range": `bytes */${info.size}`, "Content-Length": "0" });
    res.end();
    return;
  }
  if (method === "HEAD") {
    res.writeHead(200, { ...headersOf(info), "Content-Length": String(info.size) });
    res.end();
    return;
  }
  // headers from the file actually read, should the object have been replaced since the stat
  const read = await store.get(grant.key, range ? { range } : {});
  if (read.range) {
    res.writeHead(206, {
      ...headersOf(read.info),
      "Content-Range": `bytes ${read.range.start}-${read.range.end}/${read.info.size}`,
      "Content-Length": String(read.range.end - read.range.start + 1),
    });
  } else {
    res.writeHead(200, { ...headersOf(read.info), "Content-Length": String(read.info.size) });
  }
  await pipeline(read.body, res);
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
