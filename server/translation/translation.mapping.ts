import type { JsonObject } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { SessionStatus, TaskStatus, type Session, type StatusCounts as StatusCountsMessage, type Task } from "../../gen/persistence/v1/translation_pb.js";
import type { SESSION_COUNTERS } from "./translation.repository.js";
import { SESSION_STATUS_NAMES, TASK_STATUS_NAMES } from "./translation.fields.js";
import type { SessionRow, TaskRow } from "./translation.table.js";

type SessionView = Omit<Session, "$typeName" | "$unknown">;
type TaskView = Omit<Task, "$typeName" | "$unknown">;

const SESSION_STATUS_VALUES = invert(SESSION_STATUS_NAMES) as Record<string, SessionStatus>;
const TASK_STATUS_VALUES = invert(TASK_STATUS_NAMES) as Record<string, TaskStatus>;

/** Task counts of a session by status, as the store holds them. */
export type StatusCounts = Record<string, number>;

/** A Timestamp from µs since the epoch. */
export function timestampFromMicros(micros: number): Timestamp {
  const seconds = Math.floor(micros / 1_000_000);
  return { $typeName: "google.protobuf.Timestamp", seconds: BigInt(seconds), nanos: (micros - seconds * 1_000_000) * 1000 };
}

/**
 * The session read view: stored fields; the counters as the client declared them, each one it never
 * declared filled in from the stored tasks (which `stored_tasks` reports whatever was declared); and
 * the derived pending_tasks, progress (against the declared total) and estimated_completion.
 */
export function sessionView(row: SessionRow, counts: StatusCounts | undefined, nowMicros: number): SessionView {
  const stored = statusCountsMessage(counts);
  const counter = (column: (typeof SESSION_COUNTERS)[number], computed: number) => (Number(row[`${column}_stamp`]) > 0 ? row[column] : computed);
  const total = counter("total_tasks", Number(stored.total));
  const completed = counter("completed_tasks", Number(stored.completed));
  const failed = counter("failed_tasks", Number(stored.failed));
  const processing = counter("processing_tasks", Number(stored.processing));
  const pending = Math.max(0, total - completed - failed - processing);
  const created = Number(row.created_at);
  return {
    sessionId: row.session_id,
    filename: row.filename,
    filePath: row.file_path ?? undefined,
    status: SESSION_STATUS_VALUES[row.status] ?? SessionStatus.UNSPECIFIED,
    gameInfo: parseJson(row.game_info),
    llmProvider: row.llm_provider ?? undefined,
    metadata: parseJson(row.metadata),
    totalTasks: total,
    completedTasks: completed,
    failedTasks: failed,
    processingTasks: processing,
    createdAt: timestampFromMicros(created),
    updatedAt: timestampFromMicros(Number(row.updated_at)),
    clearFields: [],
    pendingTasks: pending,
    progress: total > 0 ? (completed / total) * 100 : 0,
    estimatedCompletion: estimate(created, nowMicros, total, completed, failed),
    storedTasks: stored,
  };
}

/** Counts by status as the contract carries them, with their sum. */
export function statusCountsMessage(counts: StatusCounts | undefined): StatusCountsMessage {
  const n = (status: string) => BigInt(counts?.[status] ?? 0);
  const total = Object.values(counts ?? {}).reduce((a, b) => a + b, 0);
  return {
    $typeName: "persistence.v1.StatusCounts",
    total: BigInt(total),
    pending: n("pending"),
    processing: n("processing"),
    completed: n("completed"),
    failed: n("failed"),
    cancelled: n("cancelled"),
  };
}

/** When the work left will be done at the completion rate seen so far; unknown before the first completion. */
function estimate(createdMicros: number, nowMicros: number, total: number, completed: number, failed: number): Timestamp | undefined {
  const remaining = total - completed - failed;
  const elapsed = nowMicros - createdMicros;
  if (completed === 0 || remaining <= 0 || elapsed <= 0) return undefined;
  return timestampFromMicros(Math.round(nowMicros + (remaining * elapsed) / completed));
}

export function taskView(row: TaskRow): TaskView {
  const time = (v: number | null) => (v === null || v === undefined ? undefined : timestampFromMicros(Number(v)));
  return {
    sessionId: row.session_id,
    taskId: row.task_id,
    batchId: row.batch_id ?? undefined,
    sheetName: row.sheet_name,
    rowIndex: row.row_index,
    columnName: row.column_name,
    sourceText: row.source_text ?? undefined,
    targetText: row.target_text ?? undefined,
    context: row.context ?? undefined,
    status: TASK_STATUS_VALUES[row.status] ?? TaskStatus.UNSPECIFIED,
    confidence: row.confidence ?? undefined,
    errorMessage: row.error_message ?? undefined,
    retryCount: row.retry_count,
    startTime: time(row.start_time),
    endTime: time(row.end_time),
    durationMs: row.duration_ms ?? undefined,
    createdAt: timestampFromMicros(Number(row.created_at)),
    updatedAt: timestampFromMicros(Number(row.updated_at)),
    llmModel: row.llm_model ?? undefined,
    tokenCount: row.token_count ?? undefined,
    cost: row.cost ?? undefined,
    targetLanguage: row.target_language ?? undefined,
    clearFields: [],
  };
}

function parseJson(text: string | null): JsonObject | undefined {
  return text ? (JSON.parse(text) as JsonObject) : undefined;
}

function invert(names: Readonly<Record<number, string>>): Record<string, number> {
  return Object.fromEntries(Object.entries(names).map(([value, name]) => [name, Number(value)]));
}
