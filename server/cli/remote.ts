import { createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { SystemService } from "../../gen/persistence/v1/system_pb.js";
import { TranslationService } from "../../gen/persistence/v1/translation_pb.js";
import type { Config } from "../config.js";

/** The running instance the commands talk to: `--url`, else `PERSISTENCE_URL`, else the configured listener. */
export function instanceUrl(config: Config, given: string | undefined, env: NodeJS.ProcessEnv): string {
  if (given) return given;
  if (env.PERSISTENCE_URL) return env.PERSISTENCE_URL;
  const { host, port } = config.listen;
  const reachable = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host;
  return `${config.tls ? "https" : "http"}://${reachable.includes(":") ? `[${reachable}]` : reachable}:${port}`;
}

/** Clients of the instance at `baseUrl`, with `PERSISTENCE_API_KEY` (never a flag: argv shows in `ps`) as bearer key. */
export function instanceClients(baseUrl: string, apiKey: string | undefined) {
  const auth: Interceptor = (next) => (req) => {
    if (apiKey) req.header.set("authorization", `Bearer ${apiKey}`);
    return next(req);
  };
  const transport = createConnectTransport({ baseUrl, httpVersion: "1.1", interceptors: [auth], defaultTimeoutMs: 30_000 });
  return { system: createClient(SystemService, transport), translation: createClient(TranslationService, transport) };
}

type Clients = ReturnType<typeof instanceClients>;

/** `status`: health, backends, and per write path the buffer, the log backlog and the dead letters. */
export async function status(clients: Clients, url: string, json: boolean): Promise<string> {
  const [health, metrics, recovery] = await Promise.all([
    clients.system.getHealth({}),
    clients.system.getMetrics({}),
    clients.translation.getRecoveryStatus({}).catch(() => undefined),
  ]);
  if (json) {
    const plain = (v: unknown) => JSON.parse(JSON.stringify(v, (_k, x: unknown) => (typeof x === "bigint" ? Number(x) : x))) as unknown;
    return JSON.stringify({ url, health: plain(health), write_paths: plain(metrics.writePaths), recovery: plain(recovery) }, null, 2);
  }
  const lines = [
    `${url}  ${health.status}  version ${health.version}  up ${health.uptimeSeconds} s`,
    `backends: ${Object.entries(health.backends).map(([name, state]) => `${name} ${state}`).join(", ") || "none"}`,
    "",
  ];
  const rows = [["write path", "buffered", "bytes", "oldest ms", "flushes", "retries", "dead letters"]];
  for (const w of metrics.writePaths) {
    rows.push([w.name, w.bufferRecords, w.bufferBytes, w.oldestUnflushedAgeMs, w.flushes, w.retries, w.deadLetters].map(String));
  }
  lines.push(...table(rows));
  if (recovery) {
    lines.push(
      "",
      `translation log: ${recovery.walPendingRecords} records not yet committed (${recovery.walReplayedRecords} replayed at start)`,
      `database reachable: ${recovery.databaseReachable ? "yes" : "no"}, retry backlog ${recovery.retryBacklog}, dead letters ${recovery.deadLetters}, incomplete sessions ${recovery.incompleteSessions}`,
    );
  }
  return lines.join("\n");
}

/** `flush`: everything the instance accepted, committed (Flush), and what it wrote. */
export async function flush(clients: Clients): Promise<string> {
  const r = await clients.translation.flush({});
  return `${r.status}: ${r.sessionsWritten} sessions and ${r.tasksWritten} tasks written, ${r.sessionsDeadLettered + r.tasksDeadLettered} dead-lettered, in ${r.durationMs} ms`;
}

/** Rows as aligned columns. */
export function table(rows: readonly (readonly string[])[]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd());
}

/** What `dead-letters retry` asks the instance for. */
export interface RetryOptions {
  readonly writePath?: string | undefined;
  readonly table?: string | undefined;
  readonly ids: readonly number[];
  readonly limit?: number | undefined;
  readonly dryRun: boolean;
}

/** How long `dead-letters retry` waits for its reply: up to 10000 dead letters, each chunk of them waiting for its commit. */
const RETRY_TIMEOUT_MS = 300_000;

/** `dead-letters retry`: RetryDeadLetters on the instance, and what it did. */
export async function retryDeadLetters(clients: Clients, options: RetryOptions, json: boolean): Promise<string> {
  const request = { writePath: options.writePath ?? "", table: options.table ?? "", ids: options.ids.map(BigInt), limit: options.limit ?? 0, dryRun: options.dryRun };
  const r = await clients.system.retryDeadLetters(request, { timeoutMs: RETRY_TIMEOUT_MS });
  const n = (v: bigint) => Number(v);
  if (json) {
    return JSON.stringify(
      {
        dry_run: r.dryRun,
        retried: n(r.retried),
        committed: n(r.committed),
        dead_lettered_again: n(r.deadLetteredAgain),
        skipped: n(r.skipped),
        remaining: n(r.remaining),
        write_paths: r.writePaths.map((w) => ({ write_path: w.writePath, retried: n(w.retried), committed: n(w.committed), dead_lettered_again: n(w.deadLetteredAgain), skipped: n(w.skipped) })),
        skipped_letters: r.skippedLetters.map((s) => ({ id: n(s.id), write_path: s.writePath, table: s.table, reason: s.reason })),
      },
      null,
      2,
    );
  }
  const lines = [
    r.dryRun
      ? `dry run, nothing changed: would retry ${r.retried}, ${r.skipped} skipped`
      : `retried ${r.retried}: ${r.committed} committed, ${r.deadLetteredAgain} refused again (new dead letters); ${r.skipped} skipped`,
    `${r.remaining} matching dead letters remain`,
  ];
  if (r.writePaths.length > 0) {
    lines.push("", ...table([["write path", "retried", "committed", "refused again", "skipped"], ...r.writePaths.map((w) => [w.writePath, ...[w.retried, w.committed, w.deadLetteredAgain, w.skipped].map(String)])]));
  }
  if (r.skippedLetters.length > 0) lines.push("", "skipped:", ...r.skippedLetters.map((s) => `  ${s.id} (${s.writePath}, ${s.table}): ${s.reason}`));
  return lines.join("\n");
}
