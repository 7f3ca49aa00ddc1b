import { create, toJson, type JsonObject } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import busboy from "busboy";
import type { IncomingMessage, ServerResponse } from "node:http";
import { pipeline } from "node:stream/promises";
import { GetDownloadUrlResponseSchema, UploadResponseSchema } from "../../gen/persistence/v1/storage_pb.js";
import { isLocalDirectoryStore, LOCAL_PRESIGNED_PATH, parseRangeHeader, serveLocalPresigned } from "../backends/objects/object-http.js";
import type { ObjectStore } from "../backends/objects/object-store.js";
import { invalidArgument, retryDelayMs, tooLarge } from "../core/errors.js";
import { toRestJson } from "../http/rest/rest-json.js";
import { restError } from "../http/rest/rest-errors.js";
import { sendError, sendJson } from "../http/rest/reply.js";
import { headerOf, type NodeRequest, type NodeResponse } from "../http/node-types.js";
import type { HttpRoute } from "../platform/module.js";
import { requestIdOf } from "../rpc/context.js";
import { contentDisposition } from "./files.names.js";
import { fileInfo } from "./files.mapping.js";
import type { FileDescription, FileKind, FilesService } from "./files.service.js";

const RPC = "/persistence.v1.StorageService";
/** Form fields of a multipart upload: how many, and how long each may be. */
const MAX_FIELDS = 16;
const MAX_FIELD_BYTES = 64 * 1024;

export interface FilesRoutesOptions {
  readonly files: FilesService;
  readonly store: ObjectStore;
  readonly maxFileBytes: number;
}

/**
 * The files domain's plain HTTP routes: the multipart upload, the download (JSON, 302 or the streamed
 * body with Range), and, for the local store, its presigned URLs (which check their own signature).
 */
export function filesRoutes(options: FilesRoutesOptions): HttpRoute[] {
  const { files, store, maxFileBytes } = options;
  const routes: HttpRoute[] = [
    {
      method: "POST",
      path: "/api/v1/storage/files/upload",
      rpc: `${RPC}/Upload`,
      handle: (req, res) => rendered(req, res, () => multipartUpload(files, maxFileBytes, req, res)),
    },
    {
      method: "GET",
      path: "/api/v1/storage/files/{file_id}/download",
      rpc: `${RPC}/GetDownloadUrl`,
      handle: (req, res, params) => rendered(req, res, () => download(files, req, res, params.file_id ?? "")),
    },
  ];
  if (isLocalDirectoryStore(store)) {
    for (const method of ["GET", "PUT"] as const) {
      routes.push({
        method,
        path: `${LOCAL_PRESIGNED_PATH}/{token}`,
        // (typed for HTTP/1.1; it reads only the method, headers and body, which HTTP/2 requests have alike)
        handle: (req, res, params) => rendered(req, res, () => serveLocalPresigned(store, params.token ?? "", req as IncomingMessage, res as ServerResponse, { maxBytes: maxFileBytes })),
      });
    }
  }
  return routes;
}

/** Runs a route, answering an oversize body 413 (not the 429 of a retryable RESOURCE_EXHAUSTED) and ending the rest of an unread upload. */
async function rendered(req: NodeRequest, res: NodeResponse, run: () => Promise<void>): Promise<void> {
  try {
    await run();
  } catch (err) {
    const error = ConnectError.from(err, Code.Internal);
    if (res.headersSent || (error.code !== Code.ResourceExhausted && error.code !== Code.InvalidArgument && error.code !== Code.FailedPrecondition && error.code !== Code.PermissionDenied && error.code !== Code.NotFound)) {
      throw err;
    }
    const oversize = error.code === Code.ResourceExhausted && retryDelayMs(error) === undefined;
    const unread = !req.readableEnded;
    // the caller may still be sending: answer, then close the connection rather than read the rest
    sendError(req, res, restError(error, requestIdOf(headerOf(req, "x-request-id")), oversize ? 413 : undefined), unread ? { connection: "close" } : {});
    if (unread) res.once("finish", () => req.destroy());
  }
}

/** The REST form of Upload: form fields (the description) first, then one file part, streamed into the store. */
async function multipartUpload(files: FilesService, maxFileBytes: number, req: NodeRequest, res: NodeResponse): Promise<void> {
  const contentType = headerOf(req, "content-type") ?? "";
  if (!/^multipart\/form-data\b/i.test(contentType)) {
    throw invalidArgument([{ field: "content-type", description: "must be multipart/form-data (form fields, then the file)" }]);
  }
  const declared = Number(headerOf(req, "content-length") ?? "0");
  if (declared > maxFileBytes + 1024 * 1024) throw tooLarge(`the upload is over the largest file accepted (${maxFileBytes} bytes)`);
  const fields: Record<string, string> = {};
  const uploaded = await new Promise<ReturnType<FilesService["upload"]>>((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({
        headers: req.headers,
        limits: { files: 1, fields: MAX_FIELDS, fieldSize: MAX_FIELD_BYTES, fileSize: maxFileBytes + 1 },
        defParamCharset: "utf8",
      });
    } catch (err) {
      reject(invalidArgument([{ field: "content-type", description: (err as Error).message }]));
      return;
    }
    let started = false;
    parser.on("field", (name, value, info) => {
      if (info.valueTruncated) reject(invalidArgument([{ field: name, description: `must be at most ${MAX_FIELD_BYTES} bytes` }]));
      fields[name] = value;
    });
    parser.on("file", (_name, stream, info) => {
      started = true;
      let description: FileDescription;
      try {
        description = describeForm(fields, info.filename ?? "", info.mimeType);
      } catch (err) {
        stream.resume();
        reject(err);
        return;
      }
      stream.on("limit", () => stream.destroy(tooLarge(`the file is over the largest accepted (${maxFileBytes} bytes)`)));
      const upload = files.upload(description, stream);
      upload.catch(() => stream.resume());
      resolve(upload);
    });
    parser.on("error", (err) => reject(err instanceof ConnectError ? err : invalidArgument([{ field: "body", description: `not a valid multipart body: ${(err as Error).message}` }])));
    parser.on("close", () => {
      if (!started) reject(invalidArgument([{ field: "file", description: "is required: one file part after the form fields" }]));
    });
    req.on("aborted", () => reject(new ConnectError("the upload was cut off", Code.Canceled)));
    req.pipe(parser);
  });
  const file = await uploaded;
  const message = create(UploadResponseSchema, { file: fileInfo(file) });
  await sendJson(req, res, 201, toRestJson(UploadResponseSchema, toJson(UploadResponseSchema, message, { useProtoFieldName: true })) as JsonObject, {});
}

function describeForm(fields: Readonly<Record<string, string>>, partName: string, partType: string): FileDescription {
  const kind = fields.kind ?? "";
  if (kind !== "" && kind !== "uploaded" && kind !== "translated") throw invalidArgument([{ field: "kind", description: "must be uploaded or translated" }]);
  let metadata: Record<string, unknown> | undefined;
  if (fields.metadata !== undefined && fields.metadata !== "") {
    try {
      metadata = JSON.parse(fields.metadata) as Record<string, unknown>;
    } catch {
      metadata = undefined;
    }
    if (typeof metadata !== "object" || metadata === null || Array.isArray(metadata)) throw invalidArgument([{ field: "metadata", description: "must be a JSON object" }]);
  }
  const size = fields.size_bytes;
  if (size !== undefined && size !== "" && !/^\d+$/.test(size)) throw invalidArgument([{ field: "size_bytes", description: "must be a whole number of bytes" }]);
  return {
    filename: fields.filename ?? partName,
    contentType: fields.content_type ?? (partType === "application/octet-stream" ? "" : partType),
    kind: kind === "" ? undefined : (kind as FileKind),
    ownerId: fields.owner_id ?? "",
    sessionId: fields.session_id ?? "",
    metadata,
    sizeBytes: size === undefined || size === "" ? undefined : Number(size),
    sha256: fields.sha256 ?? "",
  };
}

function flag(query: URLSearchParams, name: string): boolean {
  const value = query.get(name);
  return value !== null && ["true", "1", "yes", ""].includes(value.toLowerCase());
}

/** GET .../download: the presigned URL as JSON, a 302 to it (`?redirect=true`), or the body itself (`?stream=true`, Range supported). */
async function download(files: FilesService, req: NodeRequest, res: NodeResponse, fileId: string): Promise<void> {
  const query = new URL(req.url ?? "/", "http://x").searchParams;
  const inline = flag(query, "inline");
  if (flag(query, "stream")) {
    const file = await files.requireUploaded(fileId);
    const range = parseRangeHeader(headerOf(req, "range"), file.size_bytes);
    const headers: Record<string, string> = {
      "Content-Type": file.content_type,
      "Content-Disposition": contentDisposition(file.filename, inline),
      ETag: `"${file.sha256}"`,
      "Accept-Ranges": "bytes",
      "Cache-Control": "private, no-store",
      "X-Content-Type-Options": "nosniff",
    };
    if (range === "unsatisfiable") {
      res.writeHead(416, { ...headers, "Content-Range": `bytes */${file.size_bytes}`, "Content-Length": "0" });
      res.end();
      return;
    }
    if (req.method === "HEAD") {
      res.writeHead(200, { ...headers, "Content-Length": String(file.size_bytes) });
      res.end();
      return;
    }
    const body = range ? await files.download(fileId, range) : await files.download(fileId);
    const sent = body.read.range;
    if (sent) {
      res.writeHead(206, { ...headers, "Content-Range": `bytes ${sent.start}-${sent.end}/${file.size_bytes}`, "Content-Length": String(sent.end - sent.start + 1) });
    } else {
      res.writeHead(200, { ...headers, "Content-Length": String(file.size_bytes) });
    }
    await pipeline(body.read.body, res);
    return;
  }
  const seconds = Number(query.get("expires_in_seconds") ?? "0");
  if (!Number.isInteger(seconds)) throw invalidArgument([{ field: "expires_in_seconds", description: "must be a whole number of seconds" }]);
  const { file, url } = await files.downloadUrl(fileId, seconds, inline);
  if (flag(query, "redirect")) {
    res.writeHead(302, { Location: url.url, "Cache-Control": "no-store", "Content-Length": "0" });
    res.end();
    return;
  }
  const message = create(GetDownloadUrlResponseSchema, {
    fileId: file.file_id,
    url: url.url,
    method: "GET",
    expiresAt: timestampFromDate(url.expiresAt),
    filename: file.filename,
    sizeBytes: BigInt(file.size_bytes),
    contentType: file.content_type,
  });
  await sendJson(req, res, 200, toRestJson(GetDownloadUrlResponseSchema, toJson(GetDownloadUrlResponseSchema, message, { useProtoFieldName: true })) as JsonObject, {});
}
