import { readFileSync } from "node:fs";
import path from "node:path";
import { parse as parseYaml } from "yaml";
import { parseS3Url } from "./backends/objects/s3-url.js";
import { MODULES } from "./modules.js";
import type { Role } from "./platform/module.js";
import { integer, nonEmpty, parseOnOff, type SettingsReader } from "./platform/settings.js";
import { sha256Hex, type ApiKey } from "./security/api-keys.js";
import { isScope, type Scope } from "./security/scopes.js";

/** The service's whole configuration: built once at start-up, frozen, never read from the environment again. */
export interface Config {
  /** Where the one listener binds (`PERSISTENCE_LISTEN`, default 127.0.0.1:8001). Port 0 picks a free port. */
  readonly listen: { readonly host: string; readonly port: number };
  /** Local state: the write-ahead log and the embedded SQLite file (`PERSISTENCE_DATA_DIR`, default ./data). */
  readonly dataDir: string;
  /** `sqlite:<path>` or `mysql://user:pass@host:port/db` (`PERSISTENCE_SQL_URL`, default sqlite:<dataDir>/persistence.db). */
  readonly sqlUrl: string;
  /** Whether writes go through the write-ahead log (`PERSISTENCE_WAL`, default on). */
  readonly wal: boolean;
  readonly flush: {
    /** Flush once the buffer holds this many records (`PERSISTENCE_FLUSH_MAX_RECORDS`, default 1000). */
    readonly maxRecords: number;
    /** Flush once the oldest buffered record is this old (`PERSISTENCE_FLUSH_INTERVAL_MS`, default 1000). */
    readonly intervalMs: number;
  };
  readonly limits: {
    /** Largest request message accepted, in bytes (`PERSISTENCE_MAX_REQUEST_BYTES`, default 10 MiB). */
    readonly maxRequestBytes: number;
    /** Most records held unflushed before writers get RESOURCE_EXHAUSTED (`PERSISTENCE_BUFFER_MAX_RECORDS`, default 100000). */
    readonly bufferMaxRecords: number;
    /** Most bytes held unflushed before writers get RESOURCE_EXHAUSTED (`PERSISTENCE_BUFFER_MAX_BYTES`, default 256 MiB). */
    readonly bufferMaxBytes: number;
  };
  /** How long a connection may take or sit idle, and what it may hold open, whatever protocol it speaks. */
  readonly connections: {
    /** Concurrent HTTP/2 streams per connection, announced in SETTINGS; clients queue the rest (`PERSISTENCE_MAX_STREAMS_PER_CONNECTION`, default 256). */
    readonly maxStreams: number;
    /** Time a new connection has to show its protocol (TLS handshake included) and each HTTP/1.1 request its headers, in ms (`PERSISTENCE_HEADERS_TIMEOUT_MS`, default 10000). */
    readonly headersTimeoutMs: number;
    /** Time each request has to arrive whole, headers and body, in ms; 0: no limit (`PERSISTENCE_REQUEST_TIMEOUT_MS`, default 300000). */
    readonly requestTimeoutMs: number;
    /** Time a connection may sit with no request in flight before it is closed, in ms (`PERSISTENCE_IDLE_TIMEOUT_MS`, default 65000, above common load-balancer idles). */
    readonly idleTimeoutMs: number;
    /** Open connections, all clients together, past which new ones are turned away (`PERSISTENCE_MAX_CONNECTIONS`, default 4096). */
    readonly maxConnections: number;
    /** Open connections from one client address past which its new ones are turned away; 0: no limit (`PERSISTENCE_MAX_CONNECTIONS_PER_ADDRESS`, default 256). */
    readonly maxConnectionsPerAddress: number;
  };
  /** Whether the REST paths drop JSON fields they do not know instead of answering 400; unknown query parameters are refused either way (`PERSISTENCE_REST_IGNORE_UNKNOWN_FIELDS`, default off). */
  readonly restIgnoreUnknownFields: boolean;
  /** How long a graceful shutdown waits for in-flight calls and the last flush (`PERSISTENCE_SHUTDOWN_TIMEOUT_MS`, default 10000). */
  readonly shutdownTimeoutMs: number;
  /**
   * On SIGTERM, how long the instance goes on serving with readiness down before it stops accepting
   * (`PERSISTENCE_DRAIN_DELAY_MS`, default 0): time for a balancer that polls /readyz to take it out.
   */
  readonly drainDelayMs: number;
  /**
   * How long start-up keeps retrying a database it cannot reach, in ms; 0 tries once (`PERSISTENCE_STARTUP_TIMEOUT_MS`,
   * default 30000: enough for a MariaDB started alongside, by the same compose file or the same reboot, to
   * accept connections; short enough that a wrong address still fails within a minute).
   */
  readonly startupTimeoutMs: number;
  /** Background health probes of the backends, which `/health` and gRPC health answer from. */
  readonly health: {
    /** Time between probes (`PERSISTENCE_HEALTH_INTERVAL_MS`, default 2000: an outage shows within a few seconds, for one `select 1` per interval). */
    readonly intervalMs: number;
    /** How long a backend may take to answer one before it counts as down (`PERSISTENCE_HEALTH_TIMEOUT_MS`, default 2000). */
    readonly timeoutMs: number;
  };
  /** pino level (`PERSISTENCE_LOG_LEVEL`, default info). */
  readonly logLevel: LogLevel;
  /** `json` lines for log collectors (default), or `pretty`, readable at a terminal (`PERSISTENCE_LOG_FORMAT`). */
  readonly logFormat: LogFormat;
  /**
   * API keys (`PERSISTENCE_API_KEYS`, a JSON array of `{name, key | key_sha256, scopes}`, or the same
   * in the file named by `PERSISTENCE_API_KEYS_FILE`). Only the keys' SHA-256 is kept. None: no
   * authentication, and the listener must stay on loopback.
   */
  readonly apiKeys: readonly ApiKey[];
  /** Endpoint groups open without a key when keys are configured (`PERSISTENCE_OPEN_ENDPOINTS`: health, metrics). */
  readonly openEndpoints: readonly ("health" | "metrics")[];
  /** Listen beyond loopback without API keys (`PERSISTENCE_ALLOW_INSECURE=1`). */
  readonly allowInsecure: boolean;
  /**
   * Redis (`PERSISTENCE_REDIS_URL`, `redis://[user:pass@]host:port[/db]`, `rediss://`, or
   * `redis+cluster://host:port,host:port`): the `kv` role, and rate limits shared by every instance.
   */
  readonly redisUrl: string | undefined;
  /** An S3-compatible store for the `objects` role (`PERSISTENCE_S3_URL`, `http(s)://<access key>:<secret>@host:port/<bucket>?region=...`). */
  readonly s3Url: string | undefined;
  /** OpenSearch for the `search` role (`PERSISTENCE_OPENSEARCH_URL`, `http(s)://[user:pass@]host:port`). */
  readonly opensearchUrl: string | undefined;
  /** NATS for the `events` role across instances (`PERSISTENCE_EVENTS_URL`, `nats://host:port[,host:port...]`). */
  readonly eventsUrl: string | undefined;
  /** The NATS subject prefix every instance of one deployment shares (`PERSISTENCE_EVENTS_PREFIX`, default "persistence"): deployments on one NATS keep apart by it. */
  readonly eventsPrefix: string;
  /** The embedded object store's key for signing its URLs, at least 32 bytes (`PERSISTENCE_OBJECTS_SECRET`; default: a random key kept in `<data dir>/objects.secret`). */
  readonly objectsSecret: string | undefined;
  /** The base URL clients reach this service at (`PERSISTENCE_PUBLIC_URL`), for URLs it hands out (the embedded object store's presigned URLs). */
  readonly publicUrl: string | undefined;
  /**
   * Which backend a module's role uses when not the default (`PERSISTENCE_ROUTES=users.kv=sql,audit.search=sql`,
   * or a `routes:` mapping in the config file). By default a role goes to its real backend when that
   * backend's URL is set, else to its embedded one (see platform/roles.ts).
   */
  readonly routes: Readonly<Record<string, BackendChoice>>;
  /** Each module's own settings, by module name (see ModuleSettings). */
  readonly modules: Readonly<Record<string, unknown>>;
  /** Token buckets per API key and per client address (`PERSISTENCE_RATE_LIMIT_PER_KEY`, `..._PER_ADDRESS`: `<calls/s>[:<burst>]`; default off). */
  readonly rateLimits: { readonly perKey?: RateLimit; readonly perAddress?: RateLimit };
  /** TLS certificate and key files (`PERSISTENCE_TLS_CERT`, `PERSISTENCE_TLS_KEY`); both or neither. */
  readonly tls: { readonly certFile: string; readonly keyFile: string } | undefined;
}

/** The backends each role can use; the first is the embedded default. */
export const BACKEND_CHOICES = {
  sql: ["sql"],
  objects: ["local", "s3"],
  kv: ["sql", "redis"],
  search: ["sql", "opensearch"],
  events: ["memory", "nats"],
} as const satisfies Record<Role, readonly string[]>;
export type BackendChoice = (typeof BACKEND_CHOICES)[Role][number];

export interface RateLimit {
  readonly ratePerSecond: number;
  readonly burst: number;
}

export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "silent";
export type LogFormat = "json" | "pretty";

/** A setting that cannot be used; the message names the variable (or the config file key) at fault. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

type Source = Readonly<Record<string, string | undefined>>;

/** A setting that loadConfig does not know, and so ignores: a `PERSISTENCE_*` variable or a config-file key. */
export interface UnknownSetting {
  /** As given: `PERSISTENCE_FLUSH_INTERVAL`, or `flush_intervl in /etc/persistence.yaml`. */
  readonly setting: string;
  /** The known setting nearest to it, spelt the same way (a variable for a variable, a key for a key). */
  readonly closest: string;
}

const PREFIX = "PERSISTENCE_";
const MiB = 1024 * 1024;

/**
 * Builds the configuration from `PERSISTENCE_*` variables over an optional YAML or JSON file named by
 * `PERSISTENCE_CONFIG`, whose keys are the variable names without the prefix, in lower case
 * (`sql_url`, `flush_interval_ms`, ...). Variables win over the file. Throws ConfigError on the first bad value.
 * Variables and keys it does not know are ignored, and reported to `onUnknown` (a typo would otherwise go unseen).
 */
export function loadConfig(env: Source = process.env, onUnknown: (unknown: UnknownSetting) => void = () => {}): Config {
  const { values: fileValues, routes: fileRoutes } = readConfigFile(env[`${PREFIX}CONFIG`]);
  // Every setting is read below, whatever its value: what was read is what is known.
  const known = new Set<string>(["config"]);
  const read = (key: string): { value: string | undefined; origin: string } => {
    known.add(key);
    const variable = PREFIX + key.toUpperCase();
    if (env[variable] !== undefined && env[variable] !== "") return { value: env[variable], origin: variable };
    const fromFile = fileValues[key];
    return { value: fromFile, origin: `${key} in ${env[`${PREFIX}CONFIG`]}` };
  };
  const get = <T>(key: string, fallback: T, parse: (raw: string) => T | undefined, expected: string): T => {
    const { value, origin } = read(key);
    if (value === undefined) return fallback;
    const parsed = parse(value.trim());
    if (parsed === undefined) throw new ConfigError(`${origin}: expected ${expected}, got ${JSON.stringify(value)}`);
    return parsed;
  };

  const dataDir = path.resolve(get("data_dir", "./data", nonEmpty, "a directory path"));
  const config: Config = {
    listen: get("listen", { host: "127.0.0.1", port: 8001 }, parseListen, "host:port (port 0-65535)"),
    dataDir,
    sqlUrl: get("sql_url", `sqlite:${path.join(dataDir, "persistence.db")}`, parseSqlUrl, "sqlite:<path> or mysql://user:pass@host:port/db"),
    wal: get("wal", true, parseOnOff, "on or off"),
    flush: {
      maxRecords: get("flush_max_records", 1000, integer(1, 1_000_000), "an integer from 1 to 1000000"),
      intervalMs: get("flush_interval_ms", 1000, integer(1, 3_600_000), "milliseconds from 1 to 3600000"),
    },
    limits: {
      maxRequestBytes: get("max_request_bytes", 10 * MiB, integer(1024, 1024 * MiB), "bytes from 1024 to 1 GiB"),
      bufferMaxRecords: get("buffer_max_records", 100_000, integer(1, 100_000_000), "an integer from 1 to 100000000"),
      bufferMaxBytes: get("buffer_max_bytes", 256 * MiB, integer(MiB, 64 * 1024 * MiB), "bytes from 1 MiB to 64 GiB"),
    },
    connections: {
      // Below 100, clients that send before the SETTINGS arrive (Node's and grpc-go's assume 100) get streams reset.
      maxStreams: get("max_streams_per_connection", 256, integer(100, 2 ** 31 - 1), "an integer from 100 to 2147483647"),
      headersTimeoutMs: get("headers_timeout_ms", 10_000, integer(100, 3_600_000), "milliseconds from 100 to 3600000"),
      requestTimeoutMs: get("request_timeout_ms", 300_000, integer(0, 86_400_000), "milliseconds from 0 (no limit) to 86400000"),
      idleTimeoutMs: get("idle_timeout_ms", 65_000, integer(100, 86_400_000), "milliseconds from 100 to 86400000"),
      maxConnections: get("max_connections", 4096, integer(1, 10_000_000), "an integer from 1 to 10000000"),
      maxConnectionsPerAddress: get("max_connections_per_address", 256, integer(0, 10_000_000), "an integer from 0 (no limit) to 10000000"),
    },
    restIgnoreUnknownFields: get("rest_ignore_unknown_fields", false, parseOnOff, "on or off"),
    shutdownTimeoutMs: get("shutdown_timeout_ms", 10_000, integer(0, 600_000), "milliseconds from 0 to 600000"),
    drainDelayMs: get("drain_delay_ms", 0, integer(0, 600_000), "milliseconds from 0 to 600000"),
    startupTimeoutMs: get("startup_timeout_ms", 30_000, integer(0, 3_600_000), "milliseconds from 0 (one attempt) to 3600000"),
    health: {
      intervalMs: get("health_interval_ms", 2000, integer(10, 3_600_000), "milliseconds from 10 to 3600000"),
      timeoutMs: get("health_timeout_ms", 2000, integer(10, 600_000), "milliseconds from 10 to 600000"),
    },
    logLevel: get("log_level", "info" as LogLevel, parseLogLevel, "trace, debug, info, warn, error, fatal or silent"),
    logFormat: get("log_format", "json" as LogFormat, (raw) => (["json", "pretty"] as const).find((f) => f === raw.toLowerCase()), "json or pretty"),
    apiKeys: readApiKeys(read),
    openEndpoints: get("open_endpoints", [] as ("health" | "metrics")[], parseOpenEndpoints, "a comma-separated list of health, metrics"),
    allowInsecure: get("allow_insecure", false, parseOnOff, "on or off (1 or 0)"),
    redisUrl: get("redis_url", undefined as string | undefined, parseRedisUrl, "redis://[user:pass@]host:port[/db], rediss://... or redis+cluster://host:port,host:port"),
    rateLimits: {
      ...optional("perKey", get("rate_limit_per_key", undefined as RateLimit | undefined, parseRateLimit, "<calls per second>[:<burst>], e.g. 100:200")),
      ...optional("perAddress", get("rate_limit_per_address", undefined as RateLimit | undefined, parseRateLimit, "<calls per second>[:<burst>], e.g. 100:200")),
    },
    s3Url: get("s3_url", undefined as string | undefined, (raw) => raw, "an S3 URL"),
    opensearchUrl: get("opensearch_url", undefined as string | undefined, parseHttpUrl, "http(s)://[user:pass@]host:port"),
    eventsUrl: get("events_url", undefined as string | undefined, parseNatsUrl, "nats://host:port[,host:port...] or tls://..."),
    eventsPrefix: get("events_prefix", "persistence", (raw) => (/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(raw) ? raw : undefined), "dot-separated words of letters, digits, _ and -"),
    objectsSecret: get("objects_secret", undefined as string | undefined, (raw) => (Buffer.byteLength(raw) >= 32 ? raw : undefined), "at least 32 bytes"),
    publicUrl: get("public_url", undefined as string | undefined, parseHttpUrl, "http(s)://host[:port][/path]"),
    routes: readRoutes(read, fileRoutes),
    tls: readTls(read),
    modules: {},
  };
  if (config.s3Url !== undefined) {
    try {
      parseS3Url(config.s3Url, read("s3_url").origin);
    } catch (err) {
      // parseS3Url's messages name the setting and never repeat the URL (it holds the secret).
      throw new ConfigError((err as Error).message);
    }
  }
  const reader: SettingsReader = { get };
  const modules: Record<string, unknown> = {};
  for (const module of MODULES) if (module.settings) modules[module.name] = module.settings.read(reader);
  (config as { modules: Record<string, unknown> }).modules = modules;
  checkRoutes(config);
  const { headersTimeoutMs, requestTimeoutMs } = config.connections;
  if (requestTimeoutMs > 0 && headersTimeoutMs > requestTimeoutMs) {
    throw new ConfigError(`${PREFIX}HEADERS_TIMEOUT_MS: ${headersTimeoutMs} is longer than ${PREFIX}REQUEST_TIMEOUT_MS (${requestTimeoutMs}), which includes the headers`);
  }
  if (config.apiKeys.length === 0 && !config.allowInsecure && !isLoopback(config.listen.host)) {
    throw new ConfigError(
      `${PREFIX}LISTEN: ${config.listen.host} is reachable beyond this machine and no API keys are configured; ` +
        `set ${PREFIX}API_KEYS, listen on 127.0.0.1, or set ${PREFIX}ALLOW_INSECURE=1 to accept the risk`,
    );
  }
  const knownKeys = [...known];
  const knownVariables = knownKeys.map((key) => PREFIX + key.toUpperCase());
  for (const variable of Object.keys(env)) {
    if (variable.startsWith(PREFIX) && !knownVariables.includes(variable)) {
      onUnknown({ setting: variable, closest: closest(variable, knownVariables) });
    }
  }
  for (const key of Object.keys(fileValues)) {
    if (!known.has(key)) onUnknown({ setting: `${key} in ${env[`${PREFIX}CONFIG`]}`, closest: closest(key, knownKeys) });
  }
  return deepFreeze(config);
}

/** The candidate nearest to `name` by edit distance (Levenshtein, ignoring case); the first of equals. */
function closest(name: string, candidates: readonly string[]): string {
  let best = candidates[0] ?? "";
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/** The configuration as users see it in GetConfig: plain keys, every secret replaced. */
export function redactedConfig(config: Config): Record<string, unknown> {
  return {
    listen: `${config.listen.host}:${config.listen.port}`,
    data_dir: config.dataDir,
    sql_url: redactUrl(config.sqlUrl),
    wal: config.wal ? "on" : "off",
    flush_max_records: config.flush.maxRecords,
    flush_interval_ms: config.flush.intervalMs,
    max_request_bytes: config.limits.maxRequestBytes,
    buffer_max_records: config.limits.bufferMaxRecords,
    buffer_max_bytes: config.limits.bufferMaxBytes,
    max_streams_per_connection: config.connections.maxStreams,
    headers_timeout_ms: config.connections.headersTimeoutMs,
    request_timeout_ms: config.connections.requestTimeoutMs,
    idle_timeout_ms: config.connections.idleTimeoutMs,
    max_connections: config.connections.maxConnections,
    max_connections_per_address: config.connections.maxConnectionsPerAddress,
    rest_ignore_unknown_fields: config.restIgnoreUnknownFields ? "on" : "off",
    shutdown_timeout_ms: config.shutdownTimeoutMs,
    drain_delay_ms: config.drainDelayMs,
    startup_timeout_ms: config.startupTimeoutMs,
    health_interval_ms: config.health.intervalMs,
    health_timeout_ms: config.health.timeoutMs,
    log_level: config.logLevel,
    log_format: config.logFormat,
    api_keys: config.apiKeys.map((k) => ({ name: k.name, scopes: [...k.scopes] })),
    open_endpoints: config.openEndpoints.join(","),
    allow_insecure: config.allowInsecure ? "on" : "off",
    tls: config.tls ? "on" : "off",
    redis_url: config.redisUrl === undefined ? "" : redactUrl(config.redisUrl),
    s3_url: config.s3Url === undefined ? "" : redactUrl(config.s3Url),
    opensearch_url: config.opensearchUrl === undefined ? "" : redactUrl(config.opensearchUrl),
    events_url: config.eventsUrl === undefined ? "" : redactUrl(config.eventsUrl),
    events_prefix: config.eventsPrefix,
    objects_secret: config.objectsSecret === undefined ? "" : "[redacted]",
    public_url: config.publicUrl ?? "",
    routes: Object.entries(config.routes).map(([route, backend]) => `${route}=${backend}`).join(","),
    rate_limit_per_key: formatRateLimit(config.rateLimits.perKey),
    rate_limit_per_address: formatRateLimit(config.rateLimits.perAddress),
    ...Object.fromEntries(MODULES.flatMap((m) => (m.settings ? Object.entries(m.settings.show(config.modules[m.name])) : []))),
  };
}

function formatRateLimit(limit: RateLimit | undefined): string {
  return limit ? `${limit.ratePerSecond}:${limit.burst}` : "off";
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

function parseHttpUrl(raw: string): string | undefined {
  try {
    const url = new URL(raw);
    return (url.protocol === "http:" || url.protocol === "https:") && url.hostname ? raw.replace(/\/+$/, "") : undefined;
  } catch {
    return undefined;
  }
}

function parseNatsUrl(raw: string): string | undefined {
  return /^(nats|tls):\/\/[^\s/]+(,[^\s/,]+)*\/?$/.test(raw) ? raw : undefined;
}

/** `users.kv=redis,audit.search=sql` (or the config file's `routes:` mapping): `<module>.<role>` → one of the role's backends. */
function readRoutes(read: Reader, fromFile: Record<string, string> | undefined): Record<string, BackendChoice> {
  const { value, origin } = read("routes");
  const entries: [string, string, string][] = [];
  if (value !== undefined && origin.startsWith(PREFIX)) {
    for (const part of value.split(",").map((p) => p.trim()).filter(Boolean)) {
      const [route = "", backend = ""] = part.split("=").map((p) => p.trim());
      entries.push([route, backend, origin]);
    }
  } else if (fromFile) {
    for (const [route, backend] of Object.entries(fromFile)) entries.push([route, backend, `routes.${route} in ${origin.replace(/^routes in /, "")}`]);
  }
  const routes: Record<string, BackendChoice> = {};
  for (const [route, backend, at] of entries) {
    const [module = "", role = "", extra] = route.split(".");
    if (extra !== undefined || !MODULES.some((m) => m.name === module)) {
      throw new ConfigError(`${at}: ${JSON.stringify(route)} is not <module>.<role>; modules: ${MODULES.map((m) => m.name).join(", ")}`);
    }
    if (!(role in BACKEND_CHOICES)) throw new ConfigError(`${at}: unknown role ${JSON.stringify(role)}; roles: ${Object.keys(BACKEND_CHOICES).join(", ")}`);
    const choices = BACKEND_CHOICES[role as Role] as readonly string[];
    if (!choices.includes(backend)) throw new ConfigError(`${at}: the ${role} role's backends are ${choices.join(", ")}, not ${JSON.stringify(backend)}`);
    routes[`${module}.${role}`] = backend as BackendChoice;
  }
  return routes;
}

/** A route to a real backend needs that backend's URL. */
function checkRoutes(config: Config): void {
  const needs: Partial<Record<BackendChoice, [string | undefined, string]>> = {
    s3: [config.s3Url, "S3_URL"],
    redis: [config.redisUrl, "REDIS_URL"],
    opensearch: [config.opensearchUrl, "OPENSEARCH_URL"],
    nats: [config.eventsUrl, "EVENTS_URL"],
  };
  for (const [route, backend] of Object.entries(config.routes)) {
    const need = needs[backend];
    if (need && need[0] === undefined) throw new ConfigError(`${PREFIX}ROUTES: ${route}=${backend} needs ${PREFIX}${need[1]}`);
  }
}

function parseRedisUrl(raw: string): string | undefined {
  if (/^redis\+cluster:\/\/[^\s/]+(,[^\s/,]+)*\/?$/.test(raw)) return raw;
  try {
    const url = new URL(raw);
    return (url.protocol === "redis:" || url.protocol === "rediss:") && url.hostname ? raw : undefined;
  } catch {
    return undefined;
  }
}

function parseRateLimit(raw: string): RateLimit | undefined {
  const match = /^(\d+(?:\.\d+)?)(?::(\d+))?$/.exec(raw);
  if (!match) return undefined;
  const ratePerSecond = Number(match[1]);
  const burst = match[2] === undefined ? Math.max(1, Math.ceil(ratePerSecond)) : Number(match[2]);
  return ratePerSecond > 0 && burst >= 1 ? { ratePerSecond, burst } : undefined;
}

/** Whether `host` only accepts connections from this machine. */
export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

type Reader = (key: string) => { value: string | undefined; origin: string };

/** API keys from `PERSISTENCE_API_KEYS` or the file `PERSISTENCE_API_KEYS_FILE` (JSON or YAML); keys are hashed at once. */
function readApiKeys(read: Reader): ApiKey[] {
  let { value, origin } = read("api_keys");
  const file = read("api_keys_file");
  if (value === undefined && file.value !== undefined) {
    origin = `${file.value} (${file.origin})`;
    try {
      value = JSON.stringify(parseYaml(readFileSync(file.value, "utf8")));
    } catch (err) {
      throw new ConfigError(`${file.origin}: cannot read ${file.value}: ${(err as Error).message}`);
    }
  }
  if (value === undefined || value.trim() === "") return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new ConfigError(`${origin}: expected a JSON array of {"name", "key" or "key_sha256", "scopes"}`);
  }
  if (!Array.isArray(parsed)) throw new ConfigError(`${origin}: expected a JSON array of {"name", "key" or "key_sha256", "scopes"}`);
  const names = new Set<string>();
  const hashes = new Set<string>();
  return parsed.map((entry: unknown, i) => {
    const at = `${origin}[${i}]`;
    if (typeof entry !== "object" || entry === null) throw new ConfigError(`${at}: expected an object`);
    const { name, key, key_sha256: keySha256, scopes } = entry as Record<string, unknown>;
    if (typeof name !== "string" || !/^[\w.:-]{1,64}$/.test(name)) throw new ConfigError(`${at}.name: expected 1-64 letters, digits or . _ : -`);
    if (names.has(name)) throw new ConfigError(`${at}.name: ${name} is used twice`);
    names.add(name);
    let sha256: string;
    if (typeof key === "string" && keySha256 === undefined) {
      if (key.length < 16) throw new ConfigError(`${at}.key: must be at least 16 characters`);
      sha256 = sha256Hex(key);
    } else if (typeof keySha256 === "string" && key === undefined) {
      if (!/^[0-9a-fA-F]{64}$/.test(keySha256)) throw new ConfigError(`${at}.key_sha256: expected 64 hex digits`);
      sha256 = keySha256.toLowerCase();
    } else {
      throw new ConfigError(`${at}: give exactly one of key and key_sha256`);
    }
    if (hashes.has(sha256)) throw new ConfigError(`${at}: the same key is configured twice`);
    hashes.add(sha256);
    if (!Array.isArray(scopes) || scopes.length === 0) throw new ConfigError(`${at}.scopes: expected a non-empty array`);
    for (const scope of scopes) {
      if (typeof scope !== "string" || !isScope(scope)) throw new ConfigError(`${at}.scopes: unknown scope ${JSON.stringify(scope)}`);
    }
    return { name, sha256, scopes: scopes as Scope[] };
  });
}

function readTls(read: Reader): Config["tls"] {
  const cert = read("tls_cert");
  const key = read("tls_key");
  if (cert.value === undefined && key.value === undefined) return undefined;
  if (cert.value === undefined || key.value === undefined) {
    throw new ConfigError(`${PREFIX}TLS_CERT and ${PREFIX}TLS_KEY: give both or neither`);
  }
  for (const { value, origin } of [cert, key] as { value: string; origin: string }[]) {
    try {
      readFileSync(value);
    } catch (err) {
      throw new ConfigError(`${origin}: cannot read ${value}: ${(err as Error).message}`);
    }
  }
  return { certFile: path.resolve(cert.value), keyFile: path.resolve(key.value) };
}

function parseOpenEndpoints(raw: string): ("health" | "metrics")[] | undefined {
  const parts = raw.split(",").map((p) => p.trim().toLowerCase()).filter(Boolean);
  return parts.every((p) => p === "health" || p === "metrics") ? [...new Set(parts as ("health" | "metrics")[])] : undefined;
}

/** Replaces the password of a URL (and any query parameter that looks like a secret) with "[redacted]". */
export function redactUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return raw;
  }
  if (url.password) url.password = "[redacted]";
  for (const key of [...url.searchParams.keys()]) {
    if (/pass|secret|token|key/i.test(key)) url.searchParams.set(key, "[redacted]");
  }
  return url.toString().replace(/%5Bredacted%5D/g, "[redacted]");
}

function readConfigFile(file: string | undefined): { values: Record<string, string>; routes: Record<string, string> | undefined } {
  if (!file) return { values: {}, routes: undefined };
  let parsed: unknown;
  try {
    parsed = parseYaml(readFileSync(file, "utf8"));
  } catch (err) {
    throw new ConfigError(`${PREFIX}CONFIG: cannot read ${file}: ${(err as Error).message}`);
  }
  if (parsed === null || parsed === undefined) return { values: {}, routes: undefined };
  if (typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new ConfigError(`${PREFIX}CONFIG: ${file} must hold a mapping of settings`);
  }
  const values: Record<string, string> = {};
  let routes: Record<string, string> | undefined;
  for (const [key, value] of Object.entries(parsed)) {
    if (key.toLowerCase() === "api_keys" && Array.isArray(value)) {
      values.api_keys = JSON.stringify(value);
      continue;
    }
    if (key.toLowerCase() === "routes" && value !== null && typeof value === "object" && !Array.isArray(value)) {
      routes = Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([route, backend]) => [route, String(backend)]));
      continue;
    }
    if (value === null || typeof value === "object") {
      throw new ConfigError(`${key} in ${file}: expected a single value`);
    }
    values[key.toLowerCase()] = String(value);
  }
  return { values, routes };
}

function parseListen(raw: string): { host: string; port: number } | undefined {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+)):(\d{1,5})$/.exec(raw);
  if (!match) return undefined;
  const port = Number(match[3]);
  if (port > 65535) return undefined;
  return { host: match[1] ?? match[2] ?? "", port };
}

function parseSqlUrl(raw: string): string | undefined {
  if (/^sqlite:.+/.test(raw)) return raw;
  if (!/^mysql:\/\//.test(raw)) return undefined;
  try {
    const url = new URL(raw);
    return url.hostname && url.pathname.length > 1 ? raw : undefined;
  } catch {
    return undefined;
  }
}

const LOG_LEVELS: readonly LogLevel[] = ["trace", "debug", "info", "warn", "error", "fatal", "silent"];

function parseLogLevel(raw: string): LogLevel | undefined {
  return LOG_LEVELS.find((level) => level === raw.toLowerCase());
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object") {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
