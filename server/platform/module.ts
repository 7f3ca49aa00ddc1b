import type { DescMethod, DescService } from "@bufbuild/protobuf";
import type { HandlerContext, Interceptor, ServiceImpl } from "@connectrpc/connect";
import type { Migration } from "kysely";
import type { Registry } from "prom-client";
import type { Backend } from "../backends/backend.js";
import type { EventBus } from "../backends/events/event-bus.js";
import type { KvStore } from "../backends/kv/kv-store.js";
import type { ObjectStore } from "../backends/objects/object-store.js";
import type { SearchIndex } from "../backends/search/search-index.js";
import type { SqlBackend } from "../backends/sql/sql-store.js";
import type { Config } from "../config.js";
import type { HealthMonitor } from "../core/health-monitor.js";
import type { NodeRequest, NodeResponse } from "../http/node-types.js";
import type { Logger } from "../core/logger.js";
import type { Durability } from "../core/write-batcher.js";
import type { RpcMetrics } from "../rpc/interceptors/metrics.js";
import type { DeadLetterRetry } from "./dead-letter-retry.js";
import type { SettingsReader } from "./settings.js";
import type { WritePath, WritePathOptions } from "./write-path.js";

/**
 * The module contract. A domain (translation, files, users, audit, system...) is one folder whose
 * `<name>.module.ts` exports a Module, and one line in server/modules.ts. From that list the platform
 * derives the routes, reflection, per-service gRPC health, GetInfo's services, the scope areas, the
 * config sections and the schema; it opens only the backend roles some module needs.
 */

/** The backend roles a module may need; each has an embedded default and a real backend (see platform/roles.ts). */
export interface RoleBackends {
  readonly sql: SqlBackend;
  readonly objects: ObjectStore;
  readonly kv: KvStore;
  readonly search: SearchIndex;
  readonly events: EventBus;
}
export type Role = keyof RoleBackends;
export const ROLES: readonly Role[] = ["sql", "objects", "kv", "search", "events"];

/** A service a module serves, with the roles it cannot answer without (its gRPC health follows them). */
export interface ServiceDeclaration {
  readonly desc: DescService;
  readonly needs: readonly Role[];
}

/** A service with its implementation, as `start` hands it over; build it with `implement`. */
export interface ServiceBinding {
  readonly desc: DescService;
  readonly impl: ServiceImpl<DescService>;
  /**
   * Methods served, for protobuf binary requests only, by a twin that takes the request in another
   * message of the same wire format (see records/wire-input.ts); JSON, REST and reflection keep `impl`.
   */
  readonly binary?: readonly BinaryMethod[];
}

/** A twin method (same name and service) and its implementation. */
export interface BinaryMethod {
  readonly method: DescMethod;
  readonly impl: (request: never, context: HandlerContext) => Promise<unknown>;
}

/** Pairs a descriptor with a complete implementation: a missing RPC does not compile. */
export function implement<S extends DescService>(desc: S, impl: ServiceImpl<S>): ServiceBinding {
  return { desc, impl: impl as unknown as ServiceImpl<DescService> };
}

/** A module's section of the configuration: read from `PERSISTENCE_*` variables and the config file, shown (secrets hidden) by GetConfig. */
export interface ModuleSettings<S> {
  read(reader: SettingsReader): S;
  /** The settings as GetConfig shows them: keys as in the config file, secrets replaced. */
  show(settings: S): Record<string, unknown>;
}

/** The write path options a module chooses; the platform supplies the store, the data directory, logging and metrics. */
export type ModuleWritePathOptions = Omit<WritePathOptions, "name" | "sql" | "dataDir" | "logWrites" | "logger" | "registry" | "limits"> & {
  /** Defaults to the module's name. */
  readonly name?: string;
  /** Defaults to the service-wide flush and buffer limits (PERSISTENCE_FLUSH_*, PERSISTENCE_BUFFER_*). */
  readonly limits?: Partial<WritePathOptions["limits"]>;
};

/** What the platform offers every module: figures about the running service as a whole (the system module reports them). */
export interface PlatformView {
  readonly version: string;
  /** ms since the epoch. */
  readonly startedAt: number;
  /** This instance's identity (host, process, random suffix), as the events role and leases know it. */
  readonly instanceId: string;
  readonly monitor: HealthMonitor;
  readonly rpcMetrics: RpcMetrics;
  /** Every backend opened, roles and the rest (e.g. the rate limits' Redis). */
  backends(): readonly Backend[];
  /** Every write path opened, in the order they were opened. */
  writePaths(): readonly WritePath[];
  /** Fully qualified names of every service the listener serves. */
  services(): readonly string[];
  /** The configuration as GetConfig shows it: plain keys, every secret replaced. */
  redactedConfig(): Record<string, unknown>;
  /**
   * Resolves once the listener serves (every module started, the first health probe done); never, when
   * start-up fails. Background catch-ups begin then, so a large backlog does not hold up start-up (on
   * SQLite every statement takes turns on one connection).
   */
  readonly serving: Promise<void>;
  /** Re-submits chosen dead letters through the open write paths that refused them (RetryDeadLetters). */
  readonly retryDeadLetters: DeadLetterRetry;
}

export interface ModuleContext<S, R extends Role> {
  readonly name: string;
  readonly settings: S;
  /** The service-wide configuration (listener, data directory, write-path defaults, ...). */
  readonly config: Config;
  /** The roles the module declared, and no others. */
  readonly backends: Pick<RoleBackends, R>;
  /** Labelled with the module's name. */
  readonly logger: Logger;
  readonly registry: Registry;
  /** Durability of writes that do not ask for one (`logged` with the write-ahead log on, else `accepted`). */
  readonly defaultDurability: Durability;
  /** Aborted when the service starts to shut down: long streams end then. */
  readonly stopping: AbortSignal;
  readonly platform: PlatformView;
  /** Opens a write path owned by this module (named after it unless given a name); the platform closes it after the module stops. */
  openWritePath(options: ModuleWritePathOptions): Promise<WritePath>;
  /** What a module listed before this one exports: domains reach each other only through these services. */
  use<E>(module: { readonly name: string; start(context: never): Promise<StartedModule<E>> }): E;
}

/**
 * A plain HTTP route a module serves besides its RPCs and their REST bindings: what a JSON body cannot
 * carry (a multipart upload, a streamed download with Range, a redirect, a page).
 */
export interface HttpRoute {
  readonly method: "GET" | "HEAD" | "POST" | "PUT" | "DELETE";
  /** Literal segments and `{name}` parameters, e.g. `/api/v1/files/{file_id}/content`. */
  readonly path: string;
  /**
   * The RPC (`/<service>/<method>`) this route is another form of: the caller needs that RPC's declared
   * access, checked with the API keys before `handle` runs, and its rate limits apply. Absent: the route
   * checks its own credentials (a presigned URL's signature).
   */
  readonly rpc?: string;
  handle(req: NodeRequest, res: NodeResponse, params: Readonly<Record<string, string>>): Promise<void>;
}

export interface StartedModule<E> {
  /** One binding per declared service. */
  readonly services: readonly ServiceBinding[];
  /** Plain HTTP routes (see HttpRoute). */
  readonly http?: readonly HttpRoute[];
  /**
   * Interceptors run around every RPC of every module (the audit module's access log), outside the
   * credentials check, so they see refused calls too; in module order. Default: none.
   */
  readonly interceptors?: readonly Interceptor[];
  /** What other modules may call (see ModuleContext.use). */
  readonly exports: E;
  /** Stops background work and waits for a run in progress; `deadline` is ms since the epoch. */
  stop?(deadline: number): Promise<void>;
}

export interface Module<S = unknown, R extends Role = Role, E = unknown> {
  /** Names its scope area (`<name>:read|write|admin`), config section, metrics and logs. */
  readonly name: string;
  readonly services: readonly ServiceDeclaration[];
  /** The backend roles it uses; only these are opened for it, and its context offers only these. */
  readonly needs: readonly R[];
  readonly settings?: ModuleSettings<S>;
  /** Its tables, by migration name (a UTC timestamp first); merged with the platform's and every other module's. */
  readonly migrations?: Readonly<Record<string, Migration>>;
  start(context: ModuleContext<S, R>): Promise<StartedModule<E>>;
}

/** A module of any settings, roles and exports, as the list in server/modules.ts holds them. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyModule = Module<any, Role, any>;

/** Identity at run time, checked types at compile time: `export const translationModule = defineModule({...})`. */
export function defineModule<S, R extends Role, E>(module: Module<S, R, E>): Module<S, R, E> {
  return module;
}
