import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { sql } from "kysely";
import { Registry } from "prom-client";
import { SystemService } from "../../gen/persistence/v1/system_pb";
import { loadConfig } from "../../server/config";
import { createHealthMonitor } from "../../server/core/health-monitor";
import { createLogger } from "../../server/core/logger";
import { MODULES } from "../../server/modules";
import { createClosers } from "../../server/platform/closers";
import { createDeadLetterRetry } from "../../server/platform/dead-letter-retry";
import { defineModule, type AnyModule, type PlatformView } from "../../server/platform/module";
import { createRoleSet } from "../../server/platform/roles";
import { schemaOf, startModules } from "../../server/platform/start-modules";
import { createRpcMetrics } from "../../server/rpc/interceptors/metrics";
import { openServiceSql } from "../../server/schema";
import type { SqlBackend } from "../../server/backends/sql/sql-store";

/** The platform's start-up of a list of modules, over a real embedded store. */
describe("modules", () => {
  let store: SqlBackend;
  let dataDir: string;
  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), "persistence-modules-"));
    store = await openServiceSql(`sqlite:${path.join(dataDir, "p.db")}`);
  });
  afterAll(async () => {
    await store.close();
  });

  async function start(modules: readonly AnyModule[]) {
    const config = loadConfig({ PERSISTENCE_DATA_DIR: dataDir });
    const logger = createLogger("silent");
    const closers = createClosers();
    const roles = createRoleSet({ config, sql: store, instanceId: "test", logger, closers });
    const monitor = createHealthMonitor([store]);
    const registry = new Registry();
    const platform: PlatformView = {
      version: "test",
      startedAt: Date.now(),
      instanceId: "test",
      monitor,
      rpcMetrics: createRpcMetrics(registry),
      backends: () => roles.opened(),
      writePaths: () => [],
      services: () => [],
      redactedConfig: () => ({}),
      serving: Promise.resolve(),
      retryDeadLetters: createDeadLetterRetry({ sql: store, dataDir, writePaths: () => [], instanceId: "test", logger }),
    };
    try {
      return await startModules({ modules, config, roles, sql: store, logger, registry, defaultDurability: "accepted", stopping: new AbortController().signal, platform, closers });
    } finally {
      monitor.stop();
    }
  }

  it("merges every module's migrations with the platform's, and refuses a name defined twice", () => {
    const schema = schemaOf(MODULES);
    expect(Object.keys(schema)).toEqual(expect.arrayContaining(["2026_11_29_000000_translation_tables", "2026_11_29_100001_dead_letters", "2026_12_01_221756_kv"]));
    const clash = defineModule({ name: "clash", services: [], needs: [], migrations: { "2026_11_29_000000_translation_tables": { up: async () => {} } }, start: async () => ({ services: [], exports: undefined }) });
    expect(() => schemaOf([...MODULES, clash])).toThrow("migration 2026_11_29_000000_translation_tables of module clash is already defined");
  });

  it("refuses a module that does not serve what it declares", async () => {
    const liar = defineModule({ name: "liar", services: [{ desc: SystemService, needs: [] }], needs: [], start: async () => ({ services: [], exports: undefined }) });
    await expect(start([liar])).rejects.toThrow("module liar declares persistence.v1.SystemService but serves none");
  });

  it("gives a module what earlier modules export, refuses a later one's, and stops them in reverse order", async () => {
    const stopped: string[] = [];
    const first = defineModule({
      name: "first",
      services: [],
      needs: ["sql"],
      start: async (ctx) => {
        // Only the declared roles are offered.
        expect(Object.keys(ctx.backends)).toEqual(["sql"]);
        const { rows } = await sql<{ n: number }>`select 1 as n`.execute(ctx.backends.sql.db);
        return { services: [], exports: { answer: rows[0]!.n }, stop: async () => void stopped.push("first") };
      },
    });
    const second = defineModule({
      name: "second",
      services: [],
      needs: ["kv"],
      start: async (ctx) => {
        const { answer } = ctx.use(first);
        expect(answer).toBe(1);
        await ctx.backends.kv.set("modules-test", "v", { ttlMs: 60_000 });
        return { services: [], exports: undefined, stop: async () => void stopped.push("second") };
      },
    });
    const started = await start([first, second]);
    await started.stop(Date.now() + 1000);
    expect(stopped).toEqual(["second", "first"]);

    const early = defineModule({ name: "early", services: [], needs: [], start: async (ctx) => ({ services: [], exports: ctx.use(first) }) });
    await expect(start([early, first])).rejects.toThrow("module early uses first, which is not started before it in server/modules.ts");
  });
});
