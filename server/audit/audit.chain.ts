import { createHash } from "node:crypto";
import { sql, type Kysely } from "kysely";
import { createPatch, type FieldValue, type Patch, type PatchGroups, type PatchTable } from "../core/patch.js";
import { AUDIT_PATCH_TABLE, AUDIT_TABLE, ENTRY, type AuditRow, type AuditTables } from "./audit.fields.js";

/**
 * The hash chain over `audit_logs`: entry n's hash is SHA-256 of entry n-1's hash and entry n's
 * stored fields, so altering, removing or reordering a committed entry breaks a link that
 * VerifyAuditChain finds. Positions and hashes are given inside the flush transaction, after the
 * chain head row is locked, so appends from every instance on the same database form one chain in
 * commit order.
 */

/** The hash before the first entry. */
export const GENESIS_HASH = "0".repeat(64);

/** The stored fields a hash covers, in this order (`prev_hash` comes first, `hash` is the result). */
export const HASHED_COLUMNS = ["seq", "id", ...ENTRY.fields.map((f) => f.name), "recorded_at"] as const;

const NUMERIC = new Set(["seq", "occurred_at", "recorded_at"]);

/** An entry's hash from its predecessor's and its stored values (numbers may come back from the driver as strings). */
export function entryHash(prevHash: string, row: Readonly<Record<string, unknown>>): string {
  const values = HASHED_COLUMNS.map((column) => {
    const value = row[column];
    if (value === null || value === undefined) return null;
    return NUMERIC.has(column) ? Number(value) : String(value);
  });
  return createHash("sha256").update(prevHash).update("\n").update(JSON.stringify(values)).digest("hex");
}

/** Ids looked up per statement when dropping entries already stored. */
const IDS_PER_LOOKUP = 500;

/**
 * The append path's `prepare`: locks the chain head, leaves out entries whose id is already stored (a
 * replay of the log after a crash, or a retry), gives the rest their positions, commit time and
 * hashes, and moves the head. What it returns is exactly what is inserted, every column set.
 */
export async function chainEntries(trx: Kysely<unknown>, groups: PatchGroups): Promise<PatchGroups> {
  const group = groups.find((g) => g.table === AUDIT_TABLE);
  if (!group || group.patches.length === 0) return groups;
  const db = trx.withTables<AuditTables>();
  // An UPDATE first: it takes the row lock on MySQL and the write lock on SQLite before the head is read.
  await sql`update audit_chain set seq = seq where name = 'head'`.execute(db);
  const head = await db.selectFrom("audit_chain").select(["seq", "hash", "recorded_at"]).where("name", "=", "head").executeTakeFirstOrThrow();
  const stored = new Set<string>();
  const ids = group.patches.map((p) => p.key[0]!);
  for (let i = 0; i < ids.length; i += IDS_PER_LOOKUP) {
    const found = await db.selectFrom("audit_logs").select("id").where("id", "in", ids.slice(i, i + IDS_PER_LOOKUP)).execute();
    for (const { id } of found) stored.add(id);
  }
  let seq = Number(head.seq);
  let hash = head.hash;
  // Commit times never go backwards along the chain, whatever the clocks of the instances say.
  const recordedAt = Math.max(Date.now() * 1000, Number(head.recorded_at));
  const chained: Patch[] = [];
  for (const patch of group.patches) {
    const id = patch.key[0]!;
    if (stored.has(id)) continue;
    stored.add(id);
    seq++;
    const row: Record<string, FieldValue> = { id, ...storedValues(AUDIT_PATCH_TABLE, patch), seq, recorded_at: recordedAt, prev_hash: hash };
    row.hash = entryHash(hash, row);
    hash = row.hash;
    chained.push(createPatch(AUDIT_TABLE, patch.key, patch.stamp, AUDIT_PATCH_TABLE.fieldColumns.map((c) => [c, row[c] ?? null])));
  }
  if (chained.length > 0) {
    await db.updateTable("audit_chain").set({ seq, hash, recorded_at: recordedAt }).where("name", "=", "head").execute();
  }
  return groups.map((g) => (g === group ? { table: g.table, patches: chained } : g));
}

/** The values the append insert writes for the catalog's columns: the patch's, or the column default. */
function storedValues(table: PatchTable, patch: Patch): Record<string, FieldValue> {
  const out: Record<string, FieldValue> = {};
  for (const field of ENTRY.fields) {
    const entry = patch.fields.get(field.name);
    out[field.name] = entry ? entry[0] : table.insertDefault(field.name, patch);
  }
  return out;
}

/** Where the chain first fails to hold. */
export interface ChainBreak {
  readonly seq: number;
  readonly id: string;
  readonly reason: "hash" | "prev_hash" | "missing" | "head";
  readonly description: string;
}

export interface ChainReport {
  readonly ok: boolean;
  readonly checked: number;
  readonly firstBroken?: ChainBreak;
  readonly headSeq: number;
  readonly anchorSeq: number;
}

/** Entries read per round trip while verifying. */
const VERIFY_BATCH = 2000;

/**
 * Walks the chain from the retention anchor to the head as it stood when the walk began, in bounded
 * batches (constant memory), and stops at the first link that does not hold.
 */
export async function verifyChain(db: Kysely<AuditTables>): Promise<ChainReport> {
  const marks = await db.selectFrom("audit_chain").select(["name", "seq", "hash"]).execute();
  const head = marks.find((m) => m.name === "head")!;
  const anchor = marks.find((m) => m.name === "anchor")!;
  const headSeq = Number(head.seq);
  const anchorSeq = Number(anchor.seq);
  let expected = anchorSeq + 1;
  let prevHash = anchor.hash;
  let checked = 0;
  const broken = (firstBroken: ChainBreak): ChainReport => ({ ok: false, checked, firstBroken, headSeq, anchorSeq });
  for (;;) {
    const rows = (await db
      .selectFrom("audit_logs")
      .selectAll()
      .where("seq", ">=", expected)
      .where("seq", "<=", headSeq)
      .orderBy("seq")
      .limit(VERIFY_BATCH)
      .execute()) as AuditRow[];
    for (const row of rows) {
      const seq = Number(row.seq);
      if (seq !== expected) return broken({ seq: expected, id: "", reason: "missing", description: `no entry at position ${expected} (the next stored is ${seq}, ${row.id})` });
      if (row.prev_hash !== prevHash) {
        return broken({ seq, id: row.id, reason: "prev_hash", description: `entry ${row.id} does not follow the entry before it: its prev_hash is not that entry's hash` });
      }
      const hash = entryHash(prevHash, row as unknown as Record<string, unknown>);
      if (hash !== row.hash) return broken({ seq, id: row.id, reason: "hash", description: `entry ${row.id} was altered: its stored fields do not give its hash` });
      prevHash = row.hash;
      expected++;
      checked++;
    }
    if (rows.length < VERIFY_BATCH) break;
  }
  if (expected <= headSeq) {
    return broken({ seq: expected, id: "", reason: "missing", description: `the chain head is at ${headSeq} but the stored entries end at ${expected - 1}` });
  }
  if (prevHash !== head.hash) {
    return broken({ seq: headSeq, id: "", reason: "head", description: `the chain head's hash is not the last entry's hash` });
  }
  return { ok: true, checked, headSeq, anchorSeq };
}
