import { patchTable } from "../records/patch-table.js";
import { SESSION, TASK } from "./translation.fields.js";

/** Times are µs since the epoch; `<column>_stamp` columns hold the ordering stamp of each value. */
export type SessionRow = {
  session_id: string;
  filename: string;
  file_path: string | null;
  status: string;
  game_info: string | null;
  llm_provider: string | null;
  metadata: string | null;
  total_tasks: number;
  completed_tasks: number;
  failed_tasks: number;
  processing_tasks: number;
  /** When each counter was last written; 0 when the client never declared it. */
  total_tasks_stamp: number;
  completed_tasks_stamp: number;
  failed_tasks_stamp: number;
  processing_tasks_stamp: number;
  created_at: number;
  updated_at: number;
  /** Set by a soft delete: the session is hidden until cleanup purges it. */
  deleted_at: number | null;
};

export type TaskRow = {
  session_id: string;
  task_id: string;
  batch_id: string | null;
  sheet_name: string;
  row_index: number;
  column_name: string;
  source_text: string | null;
  target_text: string | null;
  context: string | null;
  status: string;
  confidence: number | null;
  error_message: string | null;
  retry_count: number;
  start_time: number | null;
  end_time: number | null;
  duration_ms: number | null;
  llm_model: string | null;
  token_count: number | null;
  cost: number | null;
  target_language: string | null;
  created_at: number;
  updated_at: number;
};

/** The translation domain's tables, as its queries see them. */
export type TombstoneRow = {
  session_id: string;
  deleted_at: number;
};

/** A session's stored tasks: in all, and of each status with a column of its own. */
export type SessionCountsRow = {
  session_id: string;
  total: number;
  pending: number;
  processing: number;
  completed: number;
  failed: number;
  cancelled: number;
};

export type TranslationTables = {
  translation_sessions: SessionRow;
  translation_tasks: TaskRow;
  translation_tombstones: TombstoneRow;
  translation_session_counts: SessionCountsRow;
};

/** Sessions before tasks: the order every flush writes them in. */
export const TRANSLATION_PATCH_TABLES = [patchTable(SESSION), patchTable(TASK)];
