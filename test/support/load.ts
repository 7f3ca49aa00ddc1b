import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Durability } from "../../gen/persistence/v1/common_pb";
import { TaskStatus, TranslationService } from "../../gen/persistence/v1/translation_pb";
import { retryDelayMs } from "../../server/core/errors";

export interface LoadResult {
  /** task id → the highest version (retry_count) the service acknowledged. */
  readonly acked: Map<string, number>;
  /** Errors other than RESOURCE_EXHAUSTED, by code name. */
  readonly failures: Record<string, number>;
  /** Messages of the RESOURCE_EXHAUSTED replies. */
  readonly exhausted: string[];
}

export interface LoadOptions {
  readonly url: string;
  readonly sessionId: string;
  readonly writers: number;
  readonly batch: number;
  /** Durability per writer (cycled). */
  readonly durabilities: readonly Durability[];
  /** Keep going until this resolves. */
  readonly until: Promise<unknown>;
  /** Stop at the first error other than RESOURCE_EXHAUSTED (the service went away). */
  readonly stopOnFailure?: boolean;
}

/**
 * Concurrent writers over gRPC, each creating tasks of its own in batches and then updating them
 * (version 1, then 2), remembering exactly what the service acknowledged.
 */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const acked = new Map<string, number>();
  const failures: Record<string, number> = {};
  const exhausted: string[] = [];
  let done = false;
  void options.until.then(() => (done = true));
  const transport = createGrpcTransport({ baseUrl: options.url, idleConnectionTimeoutMs: 200 });
  const client = createClient(TranslationService, transport);

  const writer = async (w: number) => {
    const durability = options.durabilities[w % options.durabilities.length]!;
    for (let round = 0; !done; round++) {
      for (const version of [1, 2]) {
        const ids = Array.from({ length: options.batch }, (_, i) => `W${w}_${round}_${i}`);
        const tasks = ids.map((taskId, i) => ({
          sessionId: options.sessionId,
          taskId,
          sheetName: `Sheet${w}`,
          rowIndex: round * options.batch + i,
          columnName: "Text",
          sourceText: `line ${taskId}`,
          status: version === 1 ? TaskStatus.PENDING : TaskStatus.COMPLETED,
          retryCount: version,
        }));
        for (;;) {
          if (done) return;
          try {
            await client.batchUpsertTasks({ tasks, durability }, { timeoutMs: 30_000 });
            for (const id of ids) acked.set(id, version);
            break;
          } catch (err) {
            const e = ConnectError.from(err);
            if (e.code === Code.ResourceExhausted) {
              exhausted.push(e.rawMessage);
              await new Promise((r) => setTimeout(r, Math.min(retryDelayMs(e) ?? 100, 500)));
              continue;
            }
            const name = Code[e.code];
            failures[name] = (failures[name] ?? 0) + 1;
            if (options.stopOnFailure) return;
            await new Promise((r) => setTimeout(r, 100));
          }
        }
      }
    }
  };
  await Promise.all(Array.from({ length: options.writers }, (_, w) => writer(w)));
  return { acked, failures, exhausted };
}
