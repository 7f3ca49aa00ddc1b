/**
 * The Persistence Service client: typed calls over Connect, gRPC or gRPC-Web with deadlines, retries
 * and request ids (`createPersistenceClient`), typed errors (`PersistenceError`), the client-side
 * write batcher (`createTranslationBatcher`) and start-up recovery (`recoverIncompleteSessions`).
 * The generated messages and enums are re-exported from `./gen`, and `Code` and `ConnectError` from
 * `@connectrpc/connect`, and the Timestamp helpers from `@bufbuild/protobuf/wkt`, so callers need no
 * dependency of their own for them.
 */
export { Code, ConnectError } from "@connectrpc/connect";
export { timestampDate, timestampFromDate, timestampNow, type Timestamp } from "@bufbuild/protobuf/wkt";
export { createPersistenceClient, type PersistenceClient, type PersistenceClientOptions, type Protocol } from "./client.js";
export { PersistenceError, type FieldViolation, type PreconditionViolation } from "./errors.js";
export { isIdempotent, type RetryOptions } from "./retry.js";
export { ROUTING_KEY_HEADER, routingKeyInterceptor, routingKeyOf } from "./routing-key.js";
export {
  createTranslationBatcher,
  type BatchErrorEvent,
  type BatcherStats,
  type RecordKind,
  type SessionRecord,
  type TaskRecord,
  type TranslationBatcher,
  type TranslationBatcherOptions,
} from "./batcher.js";
export { recoverIncompleteSessions, type RecoveryOptions, type RecoveryReport } from "./recovery.js";
export * from "./gen/persistence/v1/common_pb.js";
export * from "./gen/persistence/v1/translation_pb.js";
export * from "./gen/persistence/v1/system_pb.js";
export * from "./gen/persistence/v1/users_pb.js";
export * from "./gen/persistence/v1/audit_pb.js";
export {
  createStorageClient,
  downloadFile,
  uploadFile,
  UploadFileError,
  type DownloadFileOptions,
  type StorageClient,
  type UploadFileOptions,
  type UploadState,
} from "./files.js";
export * from "./gen/persistence/v1/storage_pb.js";
