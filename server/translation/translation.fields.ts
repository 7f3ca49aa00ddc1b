import { SessionSchema, SessionStatus, TaskSchema, TaskStatus } from "../../gen/persistence/v1/translation_pb.js";
import { count, createdAt, json, longText, statusNames, text, time, type EntitySpec } from "../records/fields.js";
import { createWireRecords } from "../records/wire-records.js";

/** The translation domain's catalog: every writable field of a session and a task (see records/fields.ts). */

export const SESSION_STATUS_NAMES = statusNames(SessionStatus as unknown as Record<string, number>);
export const TASK_STATUS_NAMES = statusNames(TaskStatus as unknown as Record<string, number>);

export const SESSION: EntitySpec = {
  table: "translation_sessions",
  listName: "sessions",
  keys: [{ name: "session_id", prop: "sessionId" }],
  fields: [
    text("filename", "filename", 255, ""),
    text("file_path", "filePath", 512),
    { name: "status", prop: "status", rule: { type: "status", names: SESSION_STATUS_NAMES }, insertDefault: "pending" },
    json("game_info", "gameInfo"),
    text("llm_provider", "llmProvider", 50),
    json("metadata", "metadata"),
    count("total_tasks", "totalTasks"),
    count("completed_tasks", "completedTasks"),
    count("failed_tasks", "failedTasks"),
    count("processing_tasks", "processingTasks"),
    createdAt,
  ],
  requiredOnCreate: ["filename"],
};

export const TASK: EntitySpec = {
  table: "translation_tasks",
  listName: "tasks",
  keys: [
    { name: "session_id", prop: "sessionId" },
    { name: "task_id", prop: "taskId" },
  ],
  fields: [
    text("batch_id", "batchId", 64),
    text("sheet_name", "sheetName", 255, ""),
    count("row_index", "rowIndex"),
    text("column_name", "columnName", 255, ""),
    longText("source_text", "sourceText"),
    longText("target_text", "targetText"),
    longText("context", "context"),
    { name: "status", prop: "status", rule: { type: "status", names: TASK_STATUS_NAMES }, insertDefault: "pending" },
    { name: "confidence", prop: "confidence", rule: { type: "double", min: 0, max: 1 }, insertDefault: null, clearTo: null },
    longText("error_message", "errorMessage"),
    count("retry_count", "retryCount"),
    time("start_time", "startTime"),
    time("end_time", "endTime"),
    count("duration_ms", "durationMs", null),
    text("llm_model", "llmModel", 100),
    count("token_count", "tokenCount", null),
    { name: "cost", prop: "cost", rule: { type: "double", min: 0 }, insertDefault: null, clearTo: null },
    text("target_language", "targetLanguage", 32),
    createdAt,
  ],
  requiredOnCreate: [],
};

/** Sessions and tasks from their wire bytes (binary write requests, and their log frames). */
export const SESSION_WIRE = createWireRecords(SESSION, SessionSchema);
export const TASK_WIRE = createWireRecords(TASK, TaskSchema);
