"use strict";
// The records the benchmarks write, in one neutral form ({ session_id, task_id, fields, stamp_us }),
// with converters to the generated client's messages and to raw SQL upserts.
const path = require("node:path");
const { ROOT } = require("./service");

const { TaskStatus } = require(path.join(ROOT, "dist/gen/persistence/v1/translation_pb.js"));

const TASKS_PER_SESSION = 1000;
const SOURCE = "Hello, adventurer! Your quest awaits beyond the northern gate; bring three torches and a map.";
const TARGET = "Bonjour, aventurier ! Ta quête t'attend au-delà de la porte nord ; apporte trois torches et une carte.";

let clock = Date.now() * 1000;
/** Strictly increasing microsecond stamps, so records carry their order (as the client SDK stamps them). */
const stamp = () => (clock = Math.max(Date.now() * 1000, clock + 1));

function taskId(i) {
  return `TASK_${String(i).padStart(4, "0")}`;
}

/** A freshly uploaded task: every field of the original upload. */
function pendingFields(i) {
  return {
    batch_id: `BATCH_TR_NORMAL_${String(Math.floor(i / 100)).padStart(3, "0")}`,
    sheet_name: i % 3 === 0 ? "Items" : "Dialogue",
    row_index: i,
    column_name: "Text",
    source_text: `${SOURCE} (#${i})`,
    status: "pending",
  };
}

/** `n` records with distinct keys: sessions of 1,000 tasks, each task written once. */
function uniqueRecords(n, prefix = "u") {
  const out = new Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = { session_id: `${prefix}-${Math.floor(i / TASKS_PER_SESSION)}`, task_id: taskId(i % TASKS_PER_SESSION), fields: pendingFields(i % TASKS_PER_SESSION), stamp_us: stamp() };
  }
  return out;
}

/**
 * The translation backend's stream for `sessions` sessions of 1,000 tasks: the upload (pending),
 * then chunk by chunk of 100 tasks: processing, then completed, except that every third task fails
 * once before it completes. So each task is written 3 or 4 times (3.33 on average). Chunks are
 * homogeneous, so raw upserts can group them.
 */
function translationRecords(sessions, prefix = "t") {
  const out = [];
  for (let s = 0; s < sessions; s++) {
    const session_id = `${prefix}-${s}`;
    const rec = (i, fields) => out.push({ session_id, task_id: taskId(i), fields, stamp_us: stamp() });
    for (let i = 0; i < TASKS_PER_SESSION; i++) rec(i, pendingFields(i));
    for (let chunk = 0; chunk < TASKS_PER_SESSION; chunk += 100) {
      const ids = Array.from({ length: 100 }, (_, k) => chunk + k);
      for (const i of ids) rec(i, { status: "processing", start_time: clock });
      const failing = ids.filter((i) => i % 3 === 0);
      for (const i of failing) rec(i, { status: "failed", error_message: "rate limited by the model provider", retry_count: 1 });
      for (const i of ids) rec(i, { status: "completed", target_text: `${TARGET} (#${i})`, confidence: 0.93, duration_ms: 850, end_time: clock });
    }
  }
  return out;
}

const STATUS = { pending: TaskStatus.PENDING, processing: TaskStatus.PROCESSING, completed: TaskStatus.COMPLETED, failed: TaskStatus.FAILED };
const CAMEL = (name) => name.replace(/_([a-z])/g, (_, c) => c.toUpperCase());
const timestamp = (us) => ({ seconds: BigInt(Math.floor(us / 1e6)), nanos: (us % 1e6) * 1000 });

/** The generated client's Task message (init shape) for a record. */
function toTask(record) {
  const task = { sessionId: record.session_id, taskId: record.task_id, updatedAt: timestamp(record.stamp_us) };
  for (const [name, value] of Object.entries(record.fields)) {
    if (name === "status") task.status = STATUS[value];
    else if (name === "start_time" || name === "end_time") task[CAMEL(name)] = timestamp(value);
    else task[CAMEL(name)] = value;
  }
  return task;
}

/** Consecutive slices of `size`. */
function slices(items, size) {
  const out = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * Raw multi-row upserts of the records, in order: consecutive records with the same columns go in
 * one statement of at most `size` rows. `plain`: a record sets its columns and updated_at, nothing
 * else; `same`: the service's shape, with stamps and guards (see sameShapeStatement).
 */
function rawUpserts(records, size, shape = "plain") {
  return shape === "same" ? groupUpserts(records, size, sameShapeStatement) : groupUpserts(records, size, plainStatement);
}

/** A record's columns and updated_at, nothing else: the ceiling. */
function plainStatement(group) {
  const cols = Object.keys(group[0].fields);
  const all = ["session_id", "task_id", ...cols, "created_at", "updated_at"];
  const values = `(${all.map(() => "?").join(",")})`;
  const sql =
    `insert into translation_tasks (${all.join(",")}) values ${group.map(() => values).join(",")} ` +
    `on duplicate key update ${[...cols, "updated_at"].map((c) => `${c} = values(${c})`).join(", ")}`;
  const params = [];
  for (const r of group) params.push(r.session_id, r.task_id, ...cols.map((c) => r.fields[c]), r.stamp_us, r.stamp_us);
  return { sql, params, rows: group.length };
}

/**
 * The service's own statement shape: each column with its `_stamp` companion, applied only when its
 * stamp is at least the stored one, and updated_at the newest stamp applied.
 */
function sameShapeStatement(group) {
  const cols = Object.keys(group[0].fields);
  const all = ["session_id", "task_id", ...cols.flatMap((c) => [c, `${c}_stamp`]), "created_at", "updated_at"];
  const values = `(${all.map(() => "?").join(",")})`;
  const sets = cols.flatMap((c) => [`${c} = if(values(${c}_stamp) >= ${c}_stamp, values(${c}), ${c})`, `${c}_stamp = greatest(${c}_stamp, values(${c}_stamp))`]);
  sets.push("updated_at = greatest(updated_at, values(updated_at))");
  const sql = `insert into translation_tasks (${all.join(",")}) values ${group.map(() => values).join(",")} on duplicate key update ${sets.join(", ")}`;
  const params = [];
  for (const r of group) {
    params.push(r.session_id, r.task_id);
    for (const c of cols) params.push(r.fields[c], r.stamp_us);
    params.push(r.stamp_us, r.stamp_us);
  }
  return { sql, params, rows: group.length };
}

function groupUpserts(records, size, statement) {
  const out = [];
  let group = [];
  let signature = "";
  const emit = () => {
    if (group.length === 0) return;
    out.push(statement(group));
    group = [];
  };
  for (const r of records) {
    const sig = Object.keys(r.fields).join(",");
    if (sig !== signature || group.length === size) {
      emit();
      signature = sig;
    }
    group.push(r);
  }
  emit();
  return out;
}

/** One single-row upsert per record. */
function rawSingleUpserts(records) {
  return rawUpserts(records, 1);
}

module.exports = { TASKS_PER_SESSION, uniqueRecords, translationRecords, toTask, slices, rawUpserts, rawSingleUpserts, timestamp };
