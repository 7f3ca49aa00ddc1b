import { createHash } from "node:crypto";
import { parseArgs } from "node:util";
import { ConnectError } from "@connectrpc/connect";
import { ConfigError, loadConfig, redactUrl, type Config } from "../config.js";
import { codeName } from "../core/errors.js";
import { openServiceSql } from "../schema.js";
import { listDeadLetters, purgeDeadLetters, type DeadLetterFilter } from "./dead-letters.js";
import { flush, instanceClients, instanceUrl, retryDeadLetters, status } from "./remote.js";

const USAGE = `usage: persistence <command> [options]

Against a running instance (--url, else PERSISTENCE_URL, else the configured listener;
the key, if keys are configured, in PERSISTENCE_API_KEY):
  status [--json]                      health, backends, and per write path the buffer, flushes,
                                       retries and dead letters; the translation log's backlog
  flush                                commit everything the instance accepted, and say what was written
  dead-letters retry [--write-path P] [--table T] [--id N]... [--limit N] [--dry-run] [--json]
                                       send dead letters back through the write path that refused
                                       them (once the cause is fixed); needs --url or PERSISTENCE_URL

Against the configured database (PERSISTENCE_SQL_URL, PERSISTENCE_CONFIG, ...):
  migrate                              bring the schema up to date (the service does it at start too)
  dead-letters list [--write-path P] [--table T] [--id N]... [--limit N] [--json]
  dead-letters purge (--id N... | --write-path P | --table T | --all)
                                       delete dead letters once dealt with (and their overflow files)

Offline:
  keys hash [key]                      the SHA-256 to put in PERSISTENCE_API_KEYS as key_sha256
                                       (reads the key from standard input when not given)
`;

/** A mistake in how the command was called: usage, exit 2. */
class UsageError extends Error {}

/** Runs one command; resolves with its output, rejects with UsageError, ConfigError or the failure. */
export async function runCli(argv: readonly string[], env: NodeJS.ProcessEnv = process.env, stdin: () => Promise<string> = readStdin): Promise<string> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      url: { type: "string" },
      json: { type: "boolean", default: false },
      "write-path": { type: "string" },
      table: { type: "string" },
      "dry-run": { type: "boolean", default: false },
      id: { type: "string", multiple: true },
      limit: { type: "string" },
      all: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  const [command, sub, ...rest] = positionals;
  if (values.help || command === undefined || command === "help") return USAGE;
  const config = (): Config => loadConfig(env);
  const filter = (): DeadLetterFilter => ({
    ids: (values.id ?? []).map((id) => {
      if (!/^\d+$/.test(id)) throw new UsageError(`--id ${id}: expected a dead letter's number`);
      return Number(id);
    }),
    writePath: values["write-path"],
    table: values.table,
    limit: values.limit === undefined ? undefined : positiveInteger("--limit", values.limit),
  });

  switch (command) {
    case "status":
    case "flush": {
      noMore([sub, ...rest]);
      const cfg = config();
      const url = instanceUrl(cfg, values.url, env);
      const clients = instanceClients(url, env.PERSISTENCE_API_KEY);
      return command === "status" ? status(clients, url, values.json) : flush(clients);
    }
    case "migrate": {
      noMore([sub, ...rest]);
      const cfg = config();
      const sql = await openServiceSql(cfg.sqlUrl);
      try {
        const rows = await sql.db.withTables<{ schema_migrations: { name: string } }>().selectFrom("schema_migrations").select("name").orderBy("name").execute();
        return `${redactUrl(cfg.sqlUrl)}: schema current, ${rows.length} migrations applied (latest ${rows.at(-1)?.name ?? "none"})`;
      } finally {
        await sql.close();
      }
    }
    case "dead-letters": {
      noMore(rest);
      if (sub !== "list" && sub !== "purge" && sub !== "retry") throw new UsageError(`dead-letters ${sub ?? ""}: expected list, retry or purge`);
      const chosen = filter();
      if (sub === "retry") {
        const url = values.url ?? env.PERSISTENCE_URL;
        if (!url) {
          throw new UsageError(
            "dead-letters retry needs a running instance (--url or PERSISTENCE_URL): a record goes back through the write path that refused it, and its tables, checks and steps (audit's hash chain) exist only inside a running instance",
          );
        }
        const clients = instanceClients(url, env.PERSISTENCE_API_KEY);
        return retryDeadLetters(clients, { ...chosen, ids: chosen.ids ?? [], dryRun: values["dry-run"] }, values.json);
      }
      if (values["dry-run"]) throw new UsageError(`dead-letters ${sub}: --dry-run is for retry`);
      if (sub === "purge" && !values.all && (chosen.ids ?? []).length === 0 && chosen.writePath === undefined && chosen.table === undefined) {
        throw new UsageError("dead-letters purge: say which (--id N, --write-path P, --table T, or --all)");
      }
      const cfg = config();
      const sql = await openServiceSql(cfg.sqlUrl);
      try {
        if (sub === "list") return await listDeadLetters(sql, chosen, values.json);
        return `${await purgeDeadLetters(sql, cfg.dataDir, chosen)} dead letters purged`;
      } finally {
        await sql.close();
      }
    }
    case "keys": {
      if (sub !== "hash") throw new UsageError(`keys ${sub ?? ""}: expected hash`);
      if (rest.length > 1) throw new UsageError("keys hash: one key at most");
      const key = rest[0] ?? (await stdin()).replace(/\r?\n$/, "");
      if (key === "") throw new UsageError("keys hash: no key given (as an argument or on standard input)");
      return createHash("sha256").update(key, "utf8").digest("hex");
    }
    default:
      throw new UsageError(`unknown command ${command}`);
  }
}

function noMore(extra: readonly (string | undefined)[]): void {
  const given = extra.filter((e) => e !== undefined);
  if (given.length > 0) throw new UsageError(`unexpected ${given.join(" ")}`);
}

function positiveInteger(flag: string, raw: string): number {
  if (!/^[1-9]\d*$/.test(raw)) throw new UsageError(`${flag} ${raw}: expected a positive integer`);
  return Number(raw);
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write("key (then Enter, Ctrl-D): ");
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** The process: output on stdout, errors on stderr; exit 0, 1 (the command failed) or 2 (usage, configuration). */
export async function main(argv: readonly string[]): Promise<number> {
  try {
    process.stdout.write(`${await runCli(argv)}\n`);
    return 0;
  } catch (err) {
    if (err instanceof UsageError || (err instanceof TypeError && "code" in err && String(err.code).startsWith("ERR_PARSE_ARGS"))) {
      process.stderr.write(`${err.message}\n\n${USAGE}`);
      return 2;
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`configuration error: ${err.message}\n`);
      return 2;
    }
    if (err instanceof ConnectError) {
      process.stderr.write(`${codeName(err.code)}: ${err.rawMessage}\n`);
      return 1;
    }
    process.stderr.write(`failed: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

if (require.main === module) void main(process.argv.slice(2)).then((code) => process.exit(code));
