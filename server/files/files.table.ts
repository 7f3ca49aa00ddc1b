/** The files domain's table, as Kysely sees it. Times are microseconds since the epoch. */
export type FileRow = {
  file_id: string;
  /** uploaded | translated */
  kind: string;
  /** pending_upload | uploaded | processed | archived */
  status: string;
  filename: string;
  content_type: string;
  size_bytes: number;
  /** Lower-case hex; "" until known. */
  sha256: string;
  owner_id: string;
  /** "" for none. */
  session_id: string;
  /** JSON object text, or null. */
  metadata: string | null;
  object_key: string;
  /** Open presigned multipart upload, or null. */
  upload_id: string | null;
  part_size: number | null;
  created_at: number;
  updated_at: number;
  expires_at: number | null;
};

export type FilesTables = {
  file_metadata: FileRow;
};
