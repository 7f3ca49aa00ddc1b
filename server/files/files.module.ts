import { StorageService } from "../../gen/persistence/v1/storage_pb.js";
import { MIN_PART_BYTES, MAX_PART_BYTES } from "../backends/objects/object-store.js";
import { defineModule, implement } from "../platform/module.js";
import { integer } from "../platform/settings.js";
import { translationModule } from "../translation/translation.module.js";
import { createFilesHandler } from "./files.handler.js";
import { filesRoutes } from "./files.http.js";
import { FILES_MIGRATIONS } from "./migrations/index.js";
import { scheduleFilesCleanup } from "./files.schedule.js";
import { createFilesService, type FilesService } from "./files.service.js";
import type { FilesTables } from "./files.table.js";

export interface FilesSettings {
  /** Largest file accepted, in bytes (`PERSISTENCE_FILES_MAX_BYTES`, default 500 MiB). */
  readonly maxFileBytes: number;
  /** CreateUploadUrl answers a multipart upload above this size (`PERSISTENCE_FILES_MULTIPART_THRESHOLD_BYTES`, default 64 MiB). */
  readonly multipartThresholdBytes: number;
  /** Part size of presigned multipart uploads (`PERSISTENCE_FILES_PART_SIZE_BYTES`, default 16 MiB, at least 5 MiB). */
  readonly partSizeBytes: number;
  /** Time between scheduled files cleanups, in ms; 0 turns them off (`PERSISTENCE_FILES_CLEANUP_INTERVAL_MS`, default hourly). */
  readonly cleanupIntervalMs: number;
}

/** What files offers other modules. */
export interface FilesExports {
  readonly service: FilesService;
}

const MIB = 1024 * 1024;

/**
 * Files (SPEC §4): metadata in `file_metadata`, content in the objects role, uploads through the
 * service or presigned URLs, downloads, lifecycle cleanup. Files belong to translation sessions: a
 * session must exist to be named, and the files of a deleted session go at the next cleanup.
 */
export const filesModule = defineModule({
  name: "files",
  services: [{ desc: StorageService, needs: ["sql", "objects"] }],
  needs: ["sql", "objects"],
  migrations: FILES_MIGRATIONS,
  settings: {
    read: (r): FilesSettings => ({
      maxFileBytes: r.get("files_max_bytes", 500 * MIB, integer(1, 5 * 1024 * MIB), "bytes from 1 to 5 GiB"),
      multipartThresholdBytes: r.get("files_multipart_threshold_bytes", 64 * MIB, integer(MIN_PART_BYTES, MAX_PART_BYTES), "bytes from 5 MiB to 5 GiB"),
      partSizeBytes: r.get("files_part_size_bytes", 16 * MIB, integer(MIN_PART_BYTES, MAX_PART_BYTES), "bytes from 5 MiB to 5 GiB"),
      cleanupIntervalMs: r.get("files_cleanup_interval_ms", 3_600_000, integer(0, 366 * 86_400_000), "milliseconds from 0 (off) to a year"),
    }),
    show: (s: FilesSettings) => ({
      files_max_bytes: s.maxFileBytes,
      files_multipart_threshold_bytes: s.multipartThresholdBytes,
      files_part_size_bytes: s.partSizeBytes,
      files_cleanup_interval_ms: s.cleanupIntervalMs,
    }),
  },
  async start(ctx) {
    const { sql, objects } = ctx.backends;
    const { settings } = ctx;
    const translation = ctx.use(translationModule).service;
    const service = createFilesService({
      db: sql.db.withTables<FilesTables>(),
      store: objects,
      sessions: translation,
      limits: settings,
    });
    const cleanup =
      settings.cleanupIntervalMs > 0
        ? scheduleFilesCleanup(sql, settings.cleanupIntervalMs, ctx.platform.instanceId, ctx.logger, () => service.cleanup({ dryRun: false }))
        : undefined;
    return {
      services: [implement(StorageService, createFilesHandler(service))],
      http: filesRoutes({ files: service, store: objects, maxFileBytes: settings.maxFileBytes }),
      exports: { service } satisfies FilesExports,
      stop: async () => {
        await cleanup?.stop();
      },
    };
  },
});
