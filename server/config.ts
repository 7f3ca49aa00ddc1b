import { readFileSync } from "node:fs";
import path from "node:path";
import { parse as parseYaml } from "yaml";
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
    /** Most records in one batch write (`PERSISTENCE_MAX_BATCH_RECORDS`, default 1000). */
    readonly maxBatchRecords: number;
    /** Most records held unflushed before writers get RESOURCE_EXHAUSTED (`PERSISTENCE_BUFFER_MAX_RECORDS`, default 100000). */
    readonly bufferMaxRecords: number;
    /** Most bytes held unflushed before writers get RESOURCE_EXHAUSTED (`PERSISTENCE_BUFFER_MAX_BYTES`, default 256 MiB). */
    readonly bufferMaxBytes: number;
    /** Most WatchSession streams open on this instance; more get RESOURCE_EXHAUSTED (`PERSISTENCE_MAX_WATCH_STREAMS`, default 1000). */
    readonly maxWatchStreams: number;
    /** Most WatchSession streams open on one session; more get RESOURCE_EXHAUSTED (`PERSISTENCE_MAX_WATCH_STREAMS_PER_SESSION`, default 16). */
    readonly maxWatchStreamsPerSession: number;
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
  /** Time between scheduled cleanups of expired sessions, in ms; 0 turns them off (`PERSISTENCE_CLEANUP_INTERVAL_MS`, default daily). */
  readonly cleanupIntervalMs: number;
  /** How long a graceful shutdown waits for in-flight calls and the last flush (`PERSISTENCE_SHUTDOWN_TIMEOUT_MS`, default 10000). */
  readonly shutdownTimeoutMs: number;
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
  /** Redis (`PERSISTENCE_REDIS_URL`, `redis://[user:pass@]host:port[/db]`): rate limits shared by every instance. */
  readonly redisUrl: string | undefined;
  /** Token buckets per API key and per client address (`PERSISTENCE_RATE_LIMIT_PER_KEY`, `..._PER_ADDRESS`: `<calls/s>[:<burst>]`; default off). */
  readonly rateLimits: { readonly perKey?: RateLimit; readonly perAddress?: RateLimit };
  /** TLS certificate and key files (`PERSISTENCE_TLS_CERT`, `PERSISTENCE_TLS_KEY`); both or neither. */
  readonly tls: { readonly certFile: string; readonly keyFile: string } | undefined;
}

export interface RateLimit {
  readonly ratePerSecond: number;
  readonly burst: number;
}

export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "silent";

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
  const fileValues = readConfigFile(env[`${PREFIX}CONFIG`]);
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
      maxBatchRecords: get("max_batch_records", 1000, integer(1, 100_000), "an integer from 1 to 100000"),
      bufferMaxRecords: get("buffer_max_records", 100_000, integer(1, 100_000_000), "an integer from 1 to 100000000"),
      bufferMaxBytes: get("buffer_max_bytes", 256 * MiB, integer(MiB, 64 * 1024 * MiB), "bytes from 1 MiB to 64 GiB"),
      maxWatchStreams: get("max_watch_streams", 1000, integer(1, 1_000_000), "an integer from 1 to 1000000"),
      maxWatchStreamsPerSession: get("max_watch_streams_per_session", 16, integer(1, 1_000_000), "an integer from 1 to 1000000"),
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
    cleanupIntervalMs: get("cleanup_interval_ms", 86_400_000, integer(0, 366 * 86_400_000), "milliseconds from 0 (off) to a year"),
    shutdownTimeoutMs: get("shutdown_timeout_ms", 10_000, integer(0, 600_000), "milliseconds from 0 to 600000"),
    startupTimeoutMs: get("startup_timeout_ms", 30_000, integer(0, 3_600_000), "milliseconds from 0 (one attempt) to 3600000"),
    health: {
      intervalMs: get("health_interval_ms", 2000, integer(10, 3_600_000), "milliseconds from 10 to 3600000"),
      timeoutMs: get("health_timeout_ms", 2000, integer(10, 600_000), "milliseconds from 10 to 600000"),
    },
    logLevel: get("log_level", "info" as LogLevel, parseLogLevel, "trace, debug, info, warn, error, fatal or silent"),
    apiKeys: readApiKeys(read),
    openEndpoints: get("open_endpoints", [] as ("health" | "metrics")[], parseOpenEndpoints, "a comma-separated list of health, metrics"),
    allowInsecure: get("allow_insecure", false, parseOnOff, "on or off (1 or 0)"),
    redisUrl: get("redis_url", undefined as string | undefined, parseRedisUrl, "redis://[user:pass@]host:port[/db]"),
    rateLimits: {
      ...optional("perKey", get("rate_limit_per_key", undefined as RateLimit | undefined, parseRateLimit, "<calls per second>[:<burst>], e.g. 100:200")),
      ...optional("perAddress", get("rate_limit_per_address", undefined as RateLimit | undefined, parseRateLimit, "<calls per second>[:<burst>], e.g. 100:200")),
    },
    tls: readTls(read),
  };
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
    max_batch_records: config.limits.maxBatchRecords,
    buffer_max_records: config.limits.bufferMaxRecords,
    buffer_max_bytes: config.limits.bufferMaxBytes,
    max_watch_streams: config.limits.maxWatchStreams,
    max_watch_streams_per_session: config.limits.maxWatchStreamsPerSession,
    max_streams_per_connection: config.connections.maxStreams,
    headers_timeout_ms: config.connections.headersTimeoutMs,
    request_timeout_ms: config.connections.requestTimeoutMs,
    idle_timeout_ms: config.connections.idleTimeoutMs,
    max_connections: config.connections.maxConnections,
    max_connections_per_address: config.connections.maxConnectionsPerAddress,
    rest_ignore_unknown_fields: config.restIgnoreUnknownFields ? "on" : "off",
    cleanup_interval_ms: config.cleanupIntervalMs,
    shutdown_timeout_ms: config.shutdownTimeoutMs,
    startup_timeout_ms: config.startupTimeoutMs,
    health_interval_ms: config.health.intervalMs,
    health_timeout_ms: config.health.timeoutMs,
    log_level: config.logLevel,
    api_keys: config.apiKeys.map((k) => ({ name: k.name, scopes: [...k.scopes] })),
    open_endpoints: config.openEndpoints.join(","),
    allow_insecure: config.allowInsecure ? "on" : "off",
    tls: config.tls ? "on" : "off",
    redis_url: config.redisUrl === undefined ? "" : redactUrl(config.redisUrl),
    rate_limit_per_key: formatRateLimit(config.rateLimits.perKey),
    rate_limit_per_address: formatRateLimit(config.rateLimits.perAddress),
  };
}

function formatRateLimit(limit: RateLimit | undefined): string {
  return limit ? `${limit.ratePerSecond}:${limit.burst}` : "off";
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

function parseRedisUrl(raw: string): string | undefined {
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

function readConfigFile(file: string | undefined): Record<string, string> {
  if (!file) return {};
  let parsed: unknown;
  try {
    parsed = parseYaml(readFileSync(file, "utf8"));
  } catch (err) {
    throw new ConfigError(`${PREFIX}CONFIG: cannot read ${file}: ${(err as Error).message}`);
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new ConfigError(`${PREFIX}CONFIG: ${file} must hold a mapping of settings`);
  }
  const values: Record<string, string> = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (key.toLowerCase() === "api_keys" && Array.isArray(value)) {
      values.api_keys = JSON.stringify(value);
      continue;
    }
    if (value === null || typeof value === "object") {
      throw new ConfigError(`${key} in ${file}: expected a single value`);
    }
    values[key.toLowerCase()] = String(value);
  }
  return values;
}

function nonEmpty(raw: string): string | undefined {
  return raw === "" ? undefined : raw;
}

function integer(min: number, max: number): (raw: string) => number | undefined {
  return (raw) => {
    if (!/^-?\d+$/.test(raw)) return undefined;
    const n = Number(raw);
    return Number.isSafeInteger(n) && n >= min && n <= max ? n : undefined;
  };
}

function parseOnOff(raw: string): boolean | undefined {
  const v = raw.toLowerCase();
  if (["on", "true", "1", "yes"].includes(v)) return true;
  if (["off", "false", "0", "no"].includes(v)) return false;
  return undefined;
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
