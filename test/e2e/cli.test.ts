import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { sql as sqlText, type Kysely } from "kysely";
import { openServiceSql } from "../../server/schema";
import { ROOT, startServiceProcess, type ServiceProcess } from "../support/service-process";
import { describeEachDialect } from "../support/sql-targets";

const CLI = path.join(ROOT, "scripts", "cli.js");

/** Runs the CLI as an operator does; resolves with its exit code and output (never rejects on a non-zero exit). */
function cli(args: string[], env: Record<string, string> = {}, input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, ...env } }, (error, stdout, stderr) =>
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin?.end(input ?? "");
  });
}

describe("persistence keys hash", () => {
  it("prints the key's SHA-256, from the argument or from standard input", async () => {
    const sha = createHash("sha256").update("a-long-random-key", "utf8").digest("hex");
    expect(await cli(["keys", "hash", "a-long-random-key"])).toMatchObject({ code: 0, stdout: `${sha}\n` });
    expect(await cli(["keys", "hash"], {}, "a-long-random-key\n")).toMatchObject({ code: 0, stdout: `${sha}\n` });
    expect((await cli(["keys", "hash"], {}, "")).code).toBe(2);
  });

  it("answers a mistake with the usage and exit code 2", async () => {
    const unknown = await cli(["frobnicate"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^unknown command frobnicate\n\nusage: persistence <command>/);
    expect((await cli(["dead-letters", "purge"])).stderr).toContain("say which (--id N, --write-path P, --table T, or --all)");
    expect((await cli(["--help"])).stdout).toContain("dead-letters list");
    expect((await cli(["dead-letters", "list", "--dry-run"])).stderr).toContain("dead-letters list: --dry-run is for retry");
  });

  it("says that dead-letters retry needs a running instance, and why, when given none", async () => {
    const refused = await cli(["dead-letters", "retry", "--write-path", "translation"], { PERSISTENCE_URL: "" });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/^dead-letters retry needs a running instance \(--url or PERSISTENCE_URL\): a record goes back through the write path that refused it/);
  });
});

describe("persistence status and flush, against a running instance with API keys", () => {
  const key = "cli-status-key-0123456789abcdef0123456789";
  let service: ServiceProcess;
  beforeAll(async () => {
    // The key is configured by the hash the CLI printed, as an operator would.
    const sha = (await cli(["keys", "hash", key])).stdout.trim();
    service = await startServiceProcess({ PERSISTENCE_API_KEYS: JSON.stringify([{ name: "ops", key_sha256: sha, scopes: ["admin"] }]) });
  });
  afterAll(async () => {
    await service?.stop();
  });

  it("shows health, backends and the write path, then flushes what was accepted", async () => {
    const env = { PERSISTENCE_URL: service.url, PERSISTENCE_API_KEY: key };
    const write = await fetch(`${service.url}/api/v1/translation/sessions/batch`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ sessions: [{ session_id: "cli-s1", filename: "a.xlsx" }], durability: "accepted" }),
    });
    expect(write.status).toBe(200);
    const shown = await cli(["status"], env);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(new RegExp(`^${service.url}  healthy  version \\d+\\.\\d+\\.\\d+  up \\d+ s\nbackends: sql up[^\n]*\n`));
    expect(shown.stdout).toMatch(/\ntranslation\s+\d+\s+\d+/);
    expect(shown.stdout).toContain("translation log:");
    const json = JSON.parse((await cli(["status", "--json"], env)).stdout) as { health: { status: string }; write_paths: { name: string }[] };
    expect(json.health.status).toBe("healthy");
    expect(json.write_paths.map((w) => w.name)).toContain("translation");

    const flushed = await cli(["flush"], env);
    expect(flushed).toMatchObject({ code: 0 });
    expect(flushed.stdout).toMatch(/^(flushed|empty): \d+ sessions and \d+ tasks written, 0 dead-lettered, in \d+ ms\n$/);
  });

  it("says UNAUTHENTICATED, exit 1, without the key", async () => {
    const refused = await cli(["status"], { PERSISTENCE_URL: service.url });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^unauthenticated: /);
  });
});

describeEachDialect("cli against the configured database", (target) => {
  let dataDir: string;
  let env: Record<string, string>;
  beforeAll(() => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), "persistence-cli-"));
    env = { PERSISTENCE_SQL_URL: target().url, PERSISTENCE_DATA_DIR: dataDir };
  });
  afterAll(() => {
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("migrates the schema, lists dead letters and purges the chosen ones with their overflow files", async () => {
    const migrated = await cli(["migrate"], env);
    expect(migrated.code).toBe(0);
    expect(migrated.stdout).toMatch(/: schema current, \d+ migrations applied \(latest \d{4}_\d\d_\d\d_\d+_[a-z_]+\)\n$/);
    expect((await cli(["dead-letters", "list"], env)).stdout).toBe("no dead letters\n");

    // Two refused records, one too large for a statement: its payload names a file in the data directory.
    const sql = await openServiceSql(target().url);
    const overflowDir = path.join(dataDir, "dead-letters", "translation");
    mkdirSync(overflowDir, { recursive: true });
    writeFileSync(path.join(overflowDir, "translation_tasks-1-0.json"), "{}");
    try {
      const db = (sql.db as Kysely<unknown>).withTables<{ dead_letters: Record<string, unknown> }>();
      const now = Date.now() * 1000;
      await db
        .insertInto("dead_letters")
        .values([
          { write_path: "translation", table_name: "translation_tasks", record_key: '["s1","T1"]', payload: '{"confidence":[7,1]}', reason: "CHECK constraint failed: confidence", failed_at: now },
          { write_path: "translation", table_name: "translation_tasks", record_key: '["s1","T2"]', payload: '{"truncated":true,"bytes":9,"fields":[],"file":"translation_tasks-1-0.json"}', reason: "too large", failed_at: now },
        ])
        .execute();
    } finally {
      await sql.close();
    }
    const listed = await cli(["dead-letters", "list"], env);
    expect(listed.stdout).toMatch(/^id\s+write path\s+table\s+key\s+failed at\s+reason\n/);
    expect(listed.stdout).toContain('translation_tasks  ["s1","T1"]');
    expect(listed.stdout).toContain("CHECK constraint failed: confidence");
    const items = (JSON.parse((await cli(["dead-letters", "list", "--json"], env)).stdout) as { total: number; items: { id: number; record_key: string }[] });
    expect(items.total).toBe(2);
    const large = items.items.find((i) => i.record_key === '["s1","T2"]')!;

    expect(await cli(["dead-letters", "purge", "--id", String(large.id)], env)).toMatchObject({ code: 0, stdout: "1 dead letters purged\n" });
    expect(existsSync(path.join(overflowDir, "translation_tasks-1-0.json"))).toBe(false);
    expect((JSON.parse((await cli(["dead-letters", "list", "--json"], env)).stdout) as { total: number }).total).toBe(1);
    expect(await cli(["dead-letters", "purge", "--write-path", "audit"], env)).toMatchObject({ stdout: "0 dead letters purged\n" });
    expect(await cli(["dead-letters", "purge", "--all"], env)).toMatchObject({ stdout: "1 dead letters purged\n" });
  }, 120_000);
});

describeEachDialect("cli dead-letters retry, against a running instance", (target) => {
  const key = "cli-retry-key-0123456789abcdef0123456789";
  let service: ServiceProcess;
  let env: Record<string, string>;
  beforeAll(async () => {
    const sha = (await cli(["keys", "hash", key])).stdout.trim();
    service = await startServiceProcess({ PERSISTENCE_SQL_URL: target().url, PERSISTENCE_API_KEYS: JSON.stringify([{ name: "ops", key_sha256: sha, scopes: ["admin"] }]) });
    env = { PERSISTENCE_SQL_URL: target().url, PERSISTENCE_API_KEY: key };
  });
  afterAll(async () => {
    await service?.stop();
  });

  it("reports a dry run, retries through the instance, and leaves the one the database still refuses", async () => {
    // Two refused records, stored as the patch writer stores them: one the database takes now, one it still refuses.
    const sql = await openServiceSql(target().url);
    const stamp = Date.now() * 1000;
    const refuseT2 =
      sql.dialect === "mysql"
        ? "create trigger cli_refuse before insert on translation_tasks for each row if new.task_id = 'T2' then signal sqlstate '45000' set message_text = 'still refused'; end if"
        : "create trigger cli_refuse before insert on translation_tasks when new.task_id = 'T2' begin select raise(abort, 'still refused'); end";
    await sqlText.raw(refuseT2).execute(sql.db);
    try {
      const db = (sql.db as Kysely<unknown>).withTables<{ dead_letters: Record<string, unknown> }>();
      await db
        .insertInto("dead_letters")
        .values([
          { write_path: "translation", table_name: "translation_tasks", record_key: '["cli-r1","T1"]', payload: JSON.stringify({ source_text: ["fixed", stamp], status: ["pending", stamp] }), reason: "was refused", failed_at: stamp },
          { write_path: "translation", table_name: "translation_tasks", record_key: '["cli-r1","T2"]', payload: JSON.stringify({ source_text: ["still bad", stamp] }), reason: "was refused", failed_at: stamp },
        ])
        .execute();
    } catch (err) {
      await sql.close();
      throw err;
    }
    const dry = await cli(["dead-letters", "retry", "--url", service.url, "--write-path", "translation", "--dry-run"], env);
    expect(dry).toMatchObject({ code: 0, stdout: expect.stringMatching(/^dry run, nothing changed: would retry 2, 0 skipped\n2 matching dead letters remain\n/) });

    const done = await cli(["dead-letters", "retry", "--write-path", "translation", "--table", "translation_tasks", "--json"], { ...env, PERSISTENCE_URL: service.url });
    expect(done.code).toBe(0);
    expect(JSON.parse(done.stdout)).toMatchObject({ dry_run: false, retried: 2, committed: 1, dead_lettered_again: 1, skipped: 0, remaining: 1, write_paths: [{ write_path: "translation", retried: 2 }] });
    const left = JSON.parse((await cli(["dead-letters", "list", "--json"], env)).stdout) as { total: number; items: { record_key: string }[] };
    expect(left.items.map((i) => i.record_key)).toEqual(['["cli-r1","T2"]']);

    const bad = await cli(["dead-letters", "retry", "--url", service.url, "--write-path", "nope"], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^invalid_argument: invalid request: write_path: no write path "nope" is open on this instance/);
    await sqlText.raw("drop trigger cli_refuse").execute(sql.db);
    await sql.close();
  }, 120_000);
});
