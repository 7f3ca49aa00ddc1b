import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { StorageService } from "../../gen/persistence/v1/storage_pb.js";
import { invalidArgument } from "../core/errors.js";
import { nextPageToken, pageFigures, pageRequest } from "../core/paging.js";
import { declaredSize, fileInfo, kindName, micros, statusName } from "./files.mapping.js";
import type { FileDescription, FilesService } from "./files.service.js";

/** Bytes per message of a Download stream. */
const DOWNLOAD_CHUNK_BYTES = 256 * 1024;

/** persistence.v1.StorageService: maps the contract onto the files service. */
export function createFilesHandler(files: FilesService): ServiceImpl<typeof StorageService> {
  return {
    async upload(requests) {
      const iterator = requests[Symbol.asyncIterator]();
      const first = await iterator.next();
      if (first.done || first.value.part.case !== "description") {
        throw invalidArgument([{ field: "description", description: "the first message must carry the file's description" }]);
      }
      const d = first.value.part.value;
      const description: FileDescription = {
        filename: d.filename,
        contentType: d.contentType,
        kind: kindName(d.kind),
        ownerId: d.ownerId,
        sessionId: d.sessionId,
        metadata: d.metadata,
        sizeBytes: declaredSize(d.sizeBytes),
        sha256: d.sha256,
      };
      const chunks = async function* () {
        for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
          if (next.value.part.case !== "chunk") throw invalidArgument([{ field: "chunk", description: "every message after the first must carry bytes" }]);
          yield next.value.part.value;
        }
      };
      return { file: fileInfo(await files.upload(description, chunks())) };
    },

    async createUploadUrl(req) {
      const target = await files.createUploadUrl({
        filename: req.filename,
        contentType: req.contentType,
        kind: kindName(req.kind),
        ownerId: req.ownerId,
        sessionId: req.sessionId,
        metadata: req.metadata,
        sizeBytes: declaredSize(req.sizeBytes),
        sha256: req.sha256,
        expiresInSeconds: req.expiresInSeconds,
        multipart: req.multipart,
        partSizeBytes: declaredSize(req.partSizeBytes, "part_size_bytes") ?? 0,
      });
      return {
        fileId: target.file.file_id,
        uploadUrl: target.url?.url ?? "",
        method: "PUT",
        expiresAt: timestampFromDate(target.expiresAt),
        uploadId: target.uploadId ?? "",
        partSizeBytes: BigInt(target.partSize ?? 0),
        partCount: target.parts.length,
        parts: target.parts.map((p) => ({ partNumber: p.partNumber, url: p.url, offset: BigInt(p.offset), sizeBytes: BigInt(p.size) })),
        headers: target.headers,
      };
    },

    async completeUpload(req) {
      const parts = req.parts.map((p, i) => {
        if (p.partNumber < 1 || p.etag === "") throw invalidArgument([{ field: `parts[${i}]`, description: "needs part_number (1 or more) and etag" }]);
        return { partNumber: p.partNumber, etag: p.etag };
      });
      return { file: fileInfo(await files.completeUpload(req.fileId, parts)) };
    },

    async getFile(req) {
      return { file: fileInfo(await files.get(req.fileId)) };
    },

    async getDownloadUrl(req) {
      const { file, url } = await files.downloadUrl(req.fileId, req.expiresInSeconds, req.inline);
      return {
        fileId: file.file_id,
        url: url.url,
        method: "GET",
        expiresAt: timestampFromDate(url.expiresAt),
        filename: file.filename,
        sizeBytes: BigInt(file.size_bytes),
        contentType: file.content_type,
      };
    },

    async *download(req, ctx) {
      const offset = declaredSize(req.offset, "offset") ?? 0;
      const length = declaredSize(req.length, "length");
      const range = offset > 0 || length !== undefined ? { start: offset, ...(length !== undefined ? { end: offset + length - 1 } : {}) } : undefined;
      const { file, read } = await files.download(req.fileId, range);
      const abort = () => read.body.destroy();
      ctx.signal.addEventListener("abort", abort);
      try {
        yield { part: { case: "file", value: fileInfo(file) } };
        let pending: Buffer[] = [];
        let size = 0;
        for await (const chunk of read.body) {
          pending.push(chunk as Buffer);
          size += (chunk as Buffer).length;
          if (size >= DOWNLOAD_CHUNK_BYTES) {
            yield { part: { case: "chunk", value: Buffer.concat(pending) } };
            pending = [];
            size = 0;
          }
        }
        if (size > 0) yield { part: { case: "chunk", value: Buffer.concat(pending) } };
      } finally {
        ctx.signal.removeEventListener("abort", abort);
        read.body.destroy();
      }
    },

    async updateFile(req) {
      const status = statusName(req.status);
      return { file: fileInfo(await files.update(req.fileId, { ...(status ? { status } : {}), ...(req.metadata ? { metadata: req.metadata } : {}) })) };
    },

    async deleteFile(req) {
      await files.remove(req.fileId);
      return { status: "deleted", fileId: req.fileId };
    },

    async listFiles(req) {
      const filter = {
        kind: kindName(req.kind),
        status: statusName(req.status),
        ownerId: req.ownerId || undefined,
        sessionId: req.sessionId || undefined,
        from: micros("from_date", req.fromDate),
        to: micros("to_date", req.toDate),
      };
      const fingerprint = JSON.stringify(filter);
      const page = pageRequest(req, fingerprint);
      const after = page.cursor?.after;
      if (after && (typeof after[0] !== "number" || typeof after[1] !== "string")) {
        throw invalidArgument([{ field: "page_token", description: "is not a token this service issued" }]);
      }
      const { total, rows } = await files.list(filter, page.pageSize, after ? { after: [after[0] as number, after[1] as string] } : { offset: (page.page - 1) * page.pageSize });
      const last = rows[rows.length - 1];
      const more = last !== undefined && page.page * page.pageSize < total;
      return {
        ...pageFigures(total, page),
        items: rows.map(fileInfo),
        nextPageToken: more ? nextPageToken([Number(last.created_at), last.file_id], page.page, fingerprint) : "",
      };
    },

    async batchDeleteFiles(req) {
      const { deleted, notFound } = await files.removeMany(req.fileIds);
      return { deleted: deleted.length, deletedIds: deleted, notFoundIds: notFound };
    },

    async getFileStats() {
      const stats = await files.stats();
      const counts = (groups: Record<string, { count: number; bytes: number }>) =>
        Object.fromEntries(Object.entries(groups).map(([name, g]) => [name, { count: BigInt(g.count), bytes: BigInt(g.bytes) }]));
      return { totalFiles: BigInt(stats.totalFiles), totalBytes: BigInt(stats.totalBytes), byKind: counts(stats.byKind), byStatus: counts(stats.byStatus) };
    },

    async cleanupFiles(req) {
      const result = await files.cleanup({
        dryRun: req.dryRun,
        ...(req.uploadedDays ? { uploadedDays: req.uploadedDays } : {}),
        ...(req.processedDays ? { processedDays: req.processedDays } : {}),
        ...(req.abandonedHours ? { abandonedHours: req.abandonedHours } : {}),
      });
      return { ...result, freedBytes: BigInt(result.freedBytes) };
    },
  };
}
