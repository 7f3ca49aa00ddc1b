import { openLocalDirectoryStore } from "./local-directory.js";
import { LOCAL_PRESIGNED_PATH } from "./object-http.js";
import type { ObjectStore } from "./object-store.js";
import { openS3ObjectStore } from "./s3.js";
import { parseS3Url } from "./s3-url.js";

export interface OpenObjectStoreOptions {
  /** `PERSISTENCE_S3_URL`: an S3-compatible store when set; the local directory when not. */
  readonly url?: string;
  /** The local store's directory (the service uses `<data dir>/objects`); unused with a URL. */
  readonly dir: string;
  /** The local store's key for signing presigned URLs, at least 32 bytes; unused with a URL (S3 signs with its own secret). */
  readonly secret: string | Uint8Array;
  /**
   * The service's public base URL (`https://files.example.com`): the local store's presigned URLs are
   * `<publicBaseUrl>/objects/<token>`. Without it the local store cannot presign. A function is asked
   * at each presign (the listener's own address, known once it listens).
   */
  readonly publicBaseUrl?: string | (() => string | undefined);
}

/** The one place that chooses the `objects` implementation: S3 when a URL is given, the local directory otherwise. */
export async function openObjectStore(options: OpenObjectStoreOptions): Promise<ObjectStore> {
  if (options.url !== undefined && options.url !== "") return openS3ObjectStore(parseS3Url(options.url));
  return openLocalDirectoryStore({
    dir: options.dir,
    secret: options.secret,
    ...(options.publicBaseUrl !== undefined ? { presignBaseUrl: () => presignBase(options.publicBaseUrl) } : {}),
  });
}

function presignBase(publicBaseUrl: string | (() => string | undefined) | undefined): string | undefined {
  const base = typeof publicBaseUrl === "function" ? publicBaseUrl() : publicBaseUrl;
  return base === undefined ? undefined : base.replace(/\/+$/, "") + LOCAL_PRESIGNED_PATH;
}
