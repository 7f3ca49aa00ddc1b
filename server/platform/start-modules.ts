import type { Migration } from "kysely";
import type { Registry } from "prom-client";
import type { Config } from "../config.js";
import type { Logger } from "../core/logger.js";
import type { Durability } from "../core/write-batcher.js";
import type { SqlBackend } from "../backends/sql/sql-store.js";
import type { Closers } from "./closers.js";
import { PLATFORM_MIGRATIONS } from "./migrations/index.js";
import type { AnyModule, HttpRoute, PlatformView, RoleBackends, ServiceBinding } from "./module.js";
import type { RoleSet } from "./roles.js";
import { openWritePath, type WritePath } from "./write-path.js";

/** The schema: the platform's migrations and every module's, merged; a name used twice is a mistake caught here. */
export function schemaOf(modules: readonly AnyModule[]): Record<string, Migration> {
  const all: Record<string, Migration> = { ...PLATFORM_MIGRATIONS };
  for (const module of modules) {
    for (const [name, migration] of Object.entries(module.migrations ?? {})) {
      if (name in all) throw new Error(`migration ${name} of module ${module.name} is already defined`);
      all[name] = migration;
    }
  }
  return all;
}

/** The backends, by health name, that each service of `modules` needs to serve. */
export function serviceNeeds(modules: readonly AnyModule[], roles: RoleSet): Map<string, string[]> {
  return new Map(modules.flatMap((m) => m.services.map((s) => [s.desc.typeName, roles.healthNames(m.name, s.needs)] as const)));
}

export interface StartModulesOptions {
  readonly modules: readonly AnyModule[];
  readonly config: Config;
  readonly roles: RoleSet;
  readonly sql: SqlBackend;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly defaultDurability: Durability;
  readonly stopping: AbortSignal;
  readonly platform: PlatformView;
  /** Each module's stop and each write path's close are registered here, for a start-up that fails later on. */
  readonly closers: Closers;
}

export interface StartedModules {
  /** Every module's services with their implementations, in module order. */
  readonly services: readonly ServiceBinding[];
  /** Every module's plain HTTP routes. */
  readonly http: readonly HttpRoute[];
  /** Every write path the modules opened, in the order they were opened. */
  readonly writePaths: readonly WritePath[];
  /** Stops the modules in reverse order, then closes their write paths (what cannot be flushed by `deadline` stays in the logs). */
  stop(deadline: number): Promise<void>;
}

/**
 * Starts the modules in order. Each gets the roles it declared, a logger and write paths of its own, and
 * what earlier modules export. What a module serves must be what it declared, one binding per service.
 */
export async function startModules(options: StartModulesOptions): Promise<StartedModules> {
  const { config } = options;
  const services: ServiceBinding[] = [];
  const http: HttpRoute[] = [];
  const writePaths: WritePath[] = [];
  const stops: { name: string; stop: (deadline: number) => Promise<void> }[] = [];
  const exported = new Map<AnyModule, unknown>();

  for (const module of options.modules) {
    const logger = options.logger.child({ module: module.name });
    const backends = (await options.roles.forModule(module.name, module.needs)) as RoleBackends;
    const started = await module.start({
      name: module.name,
      settings: config.modules[module.name],
      config,
      backends,
      logger,
      registry: options.registry,
      defaultDurability: options.defaultDurability,
      stopping: options.stopping,
      platform: options.platform,
      async openWritePath(pathOptions) {
        const writePath = await openWritePath({
          name: module.name,
          ...pathOptions,
          sql: options.sql,
          dataDir: config.dataDir,
          logWrites: config.wal,
          limits: {
            flushMaxRecords: config.flush.maxRecords,
            flushIntervalMs: config.flush.intervalMs,
            maxRecords: config.limits.bufferMaxRecords,
            maxBytes: config.limits.bufferMaxBytes,
            ...pathOptions.limits,
          },
          logger,
          registry: options.registry,
        });
        if (writePaths.some((p) => p.name === writePath.name)) throw new Error(`write path ${writePath.name} is opened twice`);
        writePaths.push(writePath);
        options.closers.add(() => writePath.batcher.close(0));
        return writePath;
      },
      use: <E>(other: { readonly name: string }) => {
        if (!exported.has(other as AnyModule)) throw new Error(`module ${module.name} uses ${other.name}, which is not started before it in server/modules.ts`);
        return exported.get(other as AnyModule) as E;
      },
    });
    const declared = module.services.map((s) => s.desc.typeName).sort();
    const served = started.services.map((s) => s.desc.typeName).sort();
    if (declared.join() !== served.join()) {
      throw new Error(`module ${module.name} declares ${declared.join(", ") || "no service"} but serves ${served.join(", ") || "none"}`);
    }
    services.push(...started.services);
    http.push(...(started.http ?? []));
    exported.set(module, started.exports);
    if (started.stop) {
      const stop = started.stop.bind(started);
      stops.push({ name: module.name, stop });
      options.closers.add(() => stop(Date.now()));
    }
  }

  return {
    services,
    http,
    writePaths,
    async stop(deadline) {
      for (const { name, stop } of [...stops].reverse()) {
        await stop(deadline).catch((err: unknown) => options.logger.warn({ err, module: name }, "module stop failed"));
      }
      for (const writePath of [...writePaths].reverse()) await writePath.batcher.close(Math.max(0, deadline - Date.now()));
    },
  };
}
