import { AuditResult } from "../../gen/persistence/v1/audit_pb.js";
import type { PatchTable } from "../core/patch.js";
import { json, longText, statusNames, text, type EntitySpec } from "../records/fields.js";
import { patchTable } from "../records/patch-table.js";

/** The audit domain's catalog: every field an entry is written with (see records/fields.ts). */

export const AUDIT_RESULT_NAMES = statusNames(AuditResult as unknown as Record<string, number>);

export const AUDIT_TABLE = "audit_logs";

export const ENTRY: EntitySpec = {
  table: AUDIT_TABLE,
  listName: "entries",
  keys: [{ name: "id", prop: "id" }],
  fields: [
    { name: "occurred_at", prop: "occurredAt", rule: { type: "time" }, insertDefault: "stamp" },
    text("actor_type", "actorType", 32),
    text("actor_id", "actorId", 128),
    text("actor_name", "actorName", 255),
    text("action", "action", 128),
    text("resource_type", "resourceType", 64),
    text("resource_id", "resourceId", 255),
    { name: "result", prop: "result", rule: { type: "status", names: AUDIT_RESULT_NAMES }, insertDefault: null },
    text("ip", "ip", 64),
    text("user_agent", "userAgent", 512),
    text("request_id", "requestId", 128),
    longText("message", "message"),
    json("details", "details"),
  ],
  requiredOnCreate: ["action", "result"],
};

/** Columns the chain sets at commit (see audit.chain.ts), after the catalog's. */
export const CHAIN_COLUMNS = ["seq", "recorded_at", "prev_hash", "hash"] as const;

/** The entry's column → its path in a request, where the two differ (`actor_id` is `actor.id`). */
export const FIELD_PATHS: Readonly<Record<string, string>> = {
  actor_type: "actor.type",
  actor_id: "actor.id",
  actor_name: "actor.name",
  resource_type: "resource.type",
  resource_id: "resource.id",
};

/** How the append path writes entries: the catalog's columns, then the chain's. */
export const AUDIT_PATCH_TABLE: PatchTable = (() => {
  const base = patchTable(ENTRY);
  return { ...base, fieldColumns: [...base.fieldColumns, ...CHAIN_COLUMNS] };
})();

/** A stored entry, as `audit_logs` holds it. */
export type AuditRow = {
  id: string;
  seq: number;
  occurred_at: number;
  recorded_at: number;
  actor_type: string | null;
  actor_id: string | null;
  actor_name: string | null;
  action: string;
  resource_type: string | null;
  resource_id: string | null;
  result: string;
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  message: string | null;
  details: string | null;
  prev_hash: string;
  hash: string;
};

export type AuditTables = {
  audit_logs: AuditRow;
  audit_chain: { name: string; seq: number; hash: string; recorded_at: number };
  audit_projection: { name: string; seq: number };
  dead_letters: { id: number; write_path: string; table_name: string; record_key: string; reason: string; failed_at: number };
};
