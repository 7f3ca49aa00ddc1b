import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Backend } from "../backends/backend.js";
import { openEventBus } from "../backends/events/open-event-bus.js";
import { openKvStore } from "../backends/kv/open-kv-store.js";
import { openObjectStore } from "../backends/objects/open-object-store.js";
import { openSearchIndex } from "../backends/search/open-search-index.js";
import type { SqlBackend } from "../backends/sql/sql-store.js";
import type { BackendChoice, Config } from "../config.js";
import type { Logger } from "../core/logger.js";
import type { Closers } from "./closers.js";
import type { Role, RoleBackends } from "./module.js";

/**
 * The one place that opens the backend roles modules need, as the configuration routes them: each
 * role goes to its real backend when that backend's URL is set, to its embedded default otherwise,
 * and `PERSISTENCE_ROUTES` (or `routes:` in the config file) sends one module's role elsewhere.
 * Each backend is opened once, however many modules use it, and only if some module needs it.
 */
export interface RoleSet {
  /** What `module` was given for each role it needs. */
  forModule<R extends Role>(module: string, needs: readonly R[]): Promise<Pick<RoleBackends, R>>;
  /** Every backend opened so far, with the name each has in health reports. */
  opened(): readonly Backend[];
  /** The health names of the backends `module` uses for `roles`. */
  healthNames(module: string, roles: readonly Role[]): string[];
}

export interface RoleSetOptions {
  readonly config: Config;
  readonly sql: SqlBackend;
  readonly instanceId: string;
  readonly logger: Logger;
  /** Each backend opened is registered here, to be closed on a failed start-up and at the stop. */
  readonly closers: Closers;
  /** The listener's URL once it listens: the local store's presigned URLs use it when PERSISTENCE_PUBLIC_URL is not set. */
  readonly listenerUrl?: () => string | undefined;
}

/** The backend a module's role goes to: the configured route, else the real backend when its URL is set, else the embedded one. */
export function backendFor(config: Config, module: string, role: Role): BackendChoice {
  const routed = config.routes[`${module}.${role}`];
  if (routed) return routed;
  switch (role) {
    case "sql":
      return "sql";
    case "objects":
      return config.s3Url ? "s3" : "local";
    case "kv":
      return config.redisUrl ? "redis" : "sql";
    case "search":
      return config.opensearchUrl ? "opensearch" : "sql";
    case "events":
      return config.eventsUrl ? "nats" : "memory";
  }
}

export function createRoleSet(options: RoleSetOptions): RoleSet {
  const { config, sql, logger } = options;
  const open = new Map<string, Promise<Backend>>();
  const names = new Map<string, string>();
  const backends: Backend[] = [sql];

  const openChoice = async (role: Role, choice: BackendChoice): Promise<Backend> => {
    const log = logger.child({ role, backend: choice });
    switch (`${role}:${choice}`) {
      case "sql:sql":
        return sql;
      case "objects:local":
        return openObjectStore({
          dir: path.join(config.dataDir, "objects"),
          secret: config.objectsSecret ?? localSecret(config.dataDir),
          ...(config.publicUrl ? { publicBaseUrl: config.publicUrl } : options.listenerUrl ? { publicBaseUrl: options.listenerUrl } : {}),
        });
      case "objects:s3":
        return openObjectStore({ url: config.s3Url, dir: "", secret: "" });
      case "kv:sql":
        return openKvStore({ sql, logger: log });
      case "kv:redis":
        return openKvStore({ sql, redisUrl: config.redisUrl, logger: log });
      case "search:sql":
        return openSearchIndex({ sql });
      case "search:opensearch":
        return openSearchIndex({ opensearchUrl: config.opensearchUrl });
      case "events:memory":
        return openEventBus({ instanceId: options.instanceId, logger: log });
      case "events:nats":
        return openEventBus({ url: config.eventsUrl, prefix: config.eventsPrefix, instanceId: options.instanceId, logger: log });
      default:
        throw new Error(`the ${role} role has no backend "${choice}"`);
    }
  };

  const get = (role: Role, choice: BackendChoice): Promise<Backend> => {
    const id = `${role}:${choice}`;
    let opening = open.get(id);
    if (!opening) {
      opening = openChoice(role, choice).then((backend) => {
        if (backend !== sql) {
          // The first implementation of a role is reported by the role's name; a second (a module routed elsewhere) by role and backend.
          const name = [...names.values()].includes(role) ? `${role}-${choice}` : role;
          names.set(id, name);
          const named = name === backend.name ? backend : renamed(backend, name);
          backends.push(named);
          options.closers.add(() => backend.close());
        } else {
          names.set(id, "sql");
        }
        return backend;
      });
      open.set(id, opening);
    }
    return opening;
  };

  return {
    async forModule(module, needs) {
      const given: Partial<Record<Role, Backend>> = {};
      for (const role of needs) given[role] = await get(role, backendFor(config, module, role));
      return given as Pick<RoleBackends, (typeof needs)[number]>;
    },
    opened: () => backends,
    healthNames: (module, roles) => roles.map((role) => names.get(`${role}:${backendFor(config, module, role)}`) ?? role),
  };
}

/** A view of `backend` that reports under another name in health. */
function renamed(backend: Backend, name: string): Backend {
  return { name, kind: backend.kind, ping: () => backend.ping(), close: () => backend.close() };
}

/**
 * The embedded object store's signing key when PERSISTENCE_OBJECTS_SECRET is not set: 32 random bytes
 * kept in `<data dir>/objects.secret` (mode 0600), so presigned URLs survive a restart. Instances
 * sharing a data directory share it; instances on separate machines need the setting.
 */
function localSecret(dataDir: string): Buffer {
  const file = path.join(dataDir, "objects.secret");
  if (!existsSync(file)) {
    mkdirSync(dataDir, { recursive: true });
    try {
      writeFileSync(file, randomBytes(32).toString("base64url"), { flag: "wx", mode: 0o600 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    chmodSync(file, 0o600);
  }
  return Buffer.from(readFileSync(file, "utf8").trim(), "utf8");
}

