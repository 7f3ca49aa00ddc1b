import { setImmediate as turn } from "node:timers/promises";
import type { Kysely } from "kysely";
import type { DeclaredIndex, SearchDocument, SearchIndex } from "../backends/search/search-index.js";
import type { Logger } from "../core/logger.js";
import type { AuditRow, AuditTables } from "./audit.fields.js";

/** The search role's view of an entry: its message as text, the filterable fields as keywords. */
export const AUDIT_SCHEMA = {
  time: "occurred_at",
  text: ["message"],
  keyword: ["action", "actor_type", "actor_id", "resource_type", "resource_id", "result", "ip"],
} as const;
export type AuditSchema = typeof AUDIT_SCHEMA;

/** The logical index: daily partitions `audit_logs-YYYY.MM.DD`. */
export const AUDIT_INDEX = "audit_logs";

/**
 * Entries projected per round trip. On SQLite a round trip holds the one connection (and the event loop)
 * while it runs, so a batch stays small enough that calls arriving meanwhile wait tens of ms, not seconds.
 */
const PROJECT_BATCH = 250;
/** Longest pause between attempts while the search backend fails, in ms. */
const MAX_RETRY_MS = 30_000;

export interface AuditProjection {
  readonly index: DeclaredIndex<AuditSchema>;
  /**
   * Projects every committed entry not yet in the index; one run at a time (a call during a run waits for
   * a run after it). Runs begin once the service serves (`serving`): a backlog never holds up start-up.
   */
  catchUp(): Promise<void>;
  /** Committed entries not yet in the index. */
  lag(): Promise<number>;
  /** No more runs; resolves once the batch in progress is indexed. */
  stop(): Promise<void>;
}

/**
 * Keeps the search index a projection of the SQL record: entries are read from `audit_logs` in chain
 * order after a checkpoint (`audit_projection`), indexed, and the checkpoint moved, so a projection
 * that lags or fails loses nothing: it catches up on the next commit, after a backoff, or at start.
 * Indexing is by id, so a run repeated after a crash (or on two instances) writes the same documents.
 */
export async function createAuditProjection(
  db: Kysely<AuditTables>,
  search: SearchIndex,
  logger: Logger,
  serving: Promise<void>,
): Promise<AuditProjection> {
  const index = await search.declareIndex(AUDIT_INDEX, AUDIT_SCHEMA);
  const checkpoint = search.kind === "opensearch" ? "opensearch" : "search";
  const known = await db.selectFrom("audit_projection").select("seq").where("name", "=", checkpoint).executeTakeFirst();
  // Another instance starting at the same time may insert it first.
  if (!known) await db.insertInto("audit_projection").values({ name: checkpoint, seq: 0 }).execute().catch(() => undefined);

  let running: Promise<void> | undefined;
  let again = false;
  let failures = 0;
  let retryTimer: NodeJS.Timeout | undefined;
  let stopped = false;
  let onStop: () => void = () => {};
  const stopping = new Promise<void>((resolve) => (onStop = resolve));

  const position = async () => Number((await db.selectFrom("audit_projection").select("seq").where("name", "=", checkpoint).executeTakeFirstOrThrow()).seq);

  const runOnce = async () => {
    while (!stopped) {
      const from = await position();
      const rows = (await db.selectFrom("audit_logs").selectAll().where("seq", ">", from).orderBy("seq").limit(PROJECT_BATCH).execute()) as AuditRow[];
      if (rows.length === 0) return;
      await index.index(rows.map(documentOf));
      const to = Number(rows[rows.length - 1]!.seq);
      await db.updateTable("audit_projection").set({ seq: to }).where("name", "=", checkpoint).where("seq", "<", to).execute();
      if (rows.length < PROJECT_BATCH) return;
      // Calls that arrived during this batch go first; the next batch waits for them.
      await turn();
    }
  };

  const catchUp = (): Promise<void> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      await Promise.race([serving, stopping]);
      do {
        again = false;
        await runOnce();
      } while (again && !stopped);
    })()
      .then(
        () => void (failures = 0),
        (err: unknown) => {
          failures++;
          const delay = Math.min(MAX_RETRY_MS, 500 * 2 ** Math.min(failures - 1, 10));
          logger.warn({ err: String((err as Error).message ?? err), retry_in_ms: delay }, "audit search projection failed; it catches up from the record");
          if (!stopped && !retryTimer) {
            retryTimer = setTimeout(() => {
              retryTimer = undefined;
              void catchUp();
            }, delay);
            retryTimer.unref();
          }
        },
      )
      .finally(() => (running = undefined));
    return running;
  };

  return {
    index,
    catchUp,
    async lag() {
      const head = await db.selectFrom("audit_chain").select("seq").where("name", "=", "head").executeTakeFirstOrThrow();
      return Math.max(0, Number(head.seq) - (await position()));
    },
    async stop() {
      stopped = true;
      onStop();
      if (retryTimer) clearTimeout(retryTimer);
      await running;
    },
  };
}

function documentOf(row: AuditRow): SearchDocument<AuditSchema> {
  return {
    id: row.id,
    occurred_at: new Date(Number(row.occurred_at) / 1000),
    message: row.message,
    action: row.action,
    actor_type: row.actor_type,
    actor_id: row.actor_id,
    resource_type: row.resource_type,
    resource_id: row.resource_id,
    result: row.result,
    ip: row.ip,
  };
}
