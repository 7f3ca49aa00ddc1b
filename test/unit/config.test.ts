import { createHash } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ConfigError, loadConfig, redactedConfig, redactUrl, type UnknownSetting } from "../../server/config";
import type { Role } from "../../server/platform/module";
import { backendFor } from "../../server/platform/roles";

const tmp = mkdtempSync(path.join(os.tmpdir(), "persistence-config-"));

function file(name: string, text: string): string {
  const p = path.join(tmp, name);
  writeFileSync(p, text);
  return p;
}

describe("configuration", () => {
  it("runs on the embedded default with nothing set", () => {
    const config = loadConfig({});
    expect(config.listen).toEqual({ host: "127.0.0.1", port: 8001 });
    expect(config.dataDir).toBe(path.resolve("data"));
    expect(config.sqlUrl).toBe(`sqlite:${path.resolve("data", "persistence.db")}`);
    expect(config.wal).toBe(true);
    expect(config.flush).toEqual({ maxRecords: 1000, intervalMs: 1000 });
    expect(config.limits.maxRequestBytes).toBe(10 * 1024 * 1024);
    // Translation's own settings are its module's section.
    expect(config.modules.translation).toEqual({ maxBatchRecords: 1000, maxWatchStreams: 1000, maxWatchStreamsPerSession: 16, cleanupIntervalMs: 86_400_000 });
    expect(config.connections).toEqual({
      maxStreams: 256,
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 300_000,
      idleTimeoutMs: 65_000,
      maxConnections: 4096,
      maxConnectionsPerAddress: 256,
    });
    expect(config.logLevel).toBe("info");
    expect(config.health).toEqual({ intervalMs: 2000, timeoutMs: 2000 });
    expect(config.startupTimeoutMs).toBe(30_000);
  });

  it("reads PERSISTENCE_* variables", () => {
    const config = loadConfig({
      PERSISTENCE_LISTEN: "[::1]:9000",
      PERSISTENCE_DATA_DIR: tmp,
      PERSISTENCE_SQL_URL: "mysql://app:pw@db.internal:3307/persistence",
      PERSISTENCE_WAL: "off",
      PERSISTENCE_FLUSH_MAX_RECORDS: "500",
      PERSISTENCE_FLUSH_INTERVAL_MS: "30000",
      PERSISTENCE_LOG_LEVEL: "WARN",
    });
    expect(config.listen).toEqual({ host: "::1", port: 9000 });
    expect(config.sqlUrl).toBe("mysql://app:pw@db.internal:3307/persistence");
    expect(config.sqlUrl.startsWith("sqlite:")).toBe(false);
    expect(config.wal).toBe(false);
    expect(config.flush).toEqual({ maxRecords: 500, intervalMs: 30000 });
    expect(config.logLevel).toBe("warn");
  });

  it.each([
    ["PERSISTENCE_LISTEN", "8001"],
    ["PERSISTENCE_LISTEN", "localhost:99999"],
    ["PERSISTENCE_SQL_URL", "postgres://localhost/db"],
    ["PERSISTENCE_SQL_URL", "mysql://localhost"],
    ["PERSISTENCE_WAL", "maybe"],
    ["PERSISTENCE_FLUSH_MAX_RECORDS", "0"],
    ["PERSISTENCE_FLUSH_INTERVAL_MS", "1.5"],
    ["PERSISTENCE_MAX_REQUEST_BYTES", "ten"],
    ["PERSISTENCE_LOG_LEVEL", "loud"],
    ["PERSISTENCE_MAX_WATCH_STREAMS_PER_SESSION", "0"],
    ["PERSISTENCE_MAX_STREAMS_PER_CONNECTION", "99"],
    ["PERSISTENCE_HEADERS_TIMEOUT_MS", "0"],
    ["PERSISTENCE_IDLE_TIMEOUT_MS", "soon"],
    ["PERSISTENCE_HEALTH_INTERVAL_MS", "0"],
    ["PERSISTENCE_HEALTH_TIMEOUT_MS", "soon"],
    ["PERSISTENCE_STARTUP_TIMEOUT_MS", "-1"],
    ["PERSISTENCE_MAX_CONNECTIONS", "0"],
    ["PERSISTENCE_MAX_CONNECTIONS_PER_ADDRESS", "-1"],
  ])("fails fast naming %s when it is %j", (variable, value) => {
    expect(() => loadConfig({ [variable]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [variable]: value })).toThrow(new RegExp(`^${variable}: expected`));
  });

  it("wants the headers timeout within the request timeout, which 0 turns off", () => {
    expect(() => loadConfig({ PERSISTENCE_HEADERS_TIMEOUT_MS: "5000", PERSISTENCE_REQUEST_TIMEOUT_MS: "2000" })).toThrow(
      /^PERSISTENCE_HEADERS_TIMEOUT_MS: 5000 is longer than PERSISTENCE_REQUEST_TIMEOUT_MS \(2000\)/,
    );
    expect(loadConfig({ PERSISTENCE_HEADERS_TIMEOUT_MS: "5000", PERSISTENCE_REQUEST_TIMEOUT_MS: "0" }).connections).toMatchObject({ headersTimeoutMs: 5000, requestTimeoutMs: 0 });
  });

  it("reads a YAML or JSON file named by PERSISTENCE_CONFIG, with variables taking precedence", () => {
    const yaml = file("config.yaml", "flush_interval_ms: 250\nflush_max_records: 42\nwal: off\n");
    const fromYaml = loadConfig({ PERSISTENCE_CONFIG: yaml, PERSISTENCE_FLUSH_MAX_RECORDS: "7" });
    expect(fromYaml.flush).toEqual({ maxRecords: 7, intervalMs: 250 });
    expect(fromYaml.wal).toBe(false);

    const json = file("config.json", JSON.stringify({ listen: "127.0.0.1:0", log_level: "error" }));
    const fromJson = loadConfig({ PERSISTENCE_CONFIG: json });
    expect(fromJson.listen.port).toBe(0);
    expect(fromJson.logLevel).toBe("error");
  });

  it("names the file key at fault and rejects unreadable or malformed files", () => {
    const bad = file("bad.yaml", "flush_max_records: -3\n");
    expect(() => loadConfig({ PERSISTENCE_CONFIG: bad })).toThrow(`flush_max_records in ${bad}: expected`);
    expect(() => loadConfig({ PERSISTENCE_CONFIG: path.join(tmp, "missing.yaml") })).toThrow(/PERSISTENCE_CONFIG: cannot read/);
    expect(() => loadConfig({ PERSISTENCE_CONFIG: file("list.yaml", "- a\n- b\n") })).toThrow(/must hold a mapping/);
    expect(() => loadConfig({ PERSISTENCE_CONFIG: file("nested.yaml", "flush:\n  max: 1\n") })).toThrow(/flush in .*single value/);
  });

  it("reports unknown PERSISTENCE_* variables and config-file keys, each with the closest known setting", () => {
    const settings = file("typos.yaml", "flush_intervl_ms: 250\nwal: off\nLOG_LEVL: warn\n");
    const unknown: UnknownSetting[] = [];
    const config = loadConfig(
      {
        PERSISTENCE_CONFIG: settings,
        PERSISTENCE_FLUSH_INTERVAL: "500",
        PERSISTENCE_API_KEY: "[]",
        persistence_listen: "127.0.0.1:1",
        PERSISTENCE_LISTEN: "127.0.0.1:0",
        HOME: "/root",
      },
      (setting) => unknown.push(setting),
    );
    expect(unknown).toEqual([
      { setting: "PERSISTENCE_FLUSH_INTERVAL", closest: "PERSISTENCE_FLUSH_INTERVAL_MS" },
      { setting: "PERSISTENCE_API_KEY", closest: "PERSISTENCE_API_KEYS" },
      { setting: `flush_intervl_ms in ${settings}`, closest: "flush_interval_ms" },
      { setting: `log_levl in ${settings}`, closest: "log_level" },
    ]);
    // Ignored, as reported.
    expect(config.flush.intervalMs).toBe(1000);
    expect(config.wal).toBe(false);
  });

  it("knows every setting that GetConfig shows", () => {
    const unknown: UnknownSetting[] = [];
    const env = Object.fromEntries(Object.keys(redactedConfig(loadConfig({}))).map((key) => [`PERSISTENCE_${key.toUpperCase()}`, ""]));
    loadConfig({ ...env, PERSISTENCE_CONFIG: "", PERSISTENCE_API_KEYS_FILE: "" }, (setting) => unknown.push(setting));
    expect(unknown.filter((u) => u.setting !== "PERSISTENCE_TLS")).toEqual([]);
  });

  it("is frozen", () => {
    const config = loadConfig({});
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.limits)).toBe(true);
    expect(Object.isFrozen(config.modules.translation)).toBe(true);
    expect(() => {
      (config.limits as { maxRequestBytes: number }).maxRequestBytes = 1;
    }).toThrow(TypeError);
    expect(() => {
      (config.modules.translation as { maxBatchRecords: number }).maxBatchRecords = 1;
    }).toThrow(TypeError);
  });

  it("redacts passwords and secret-looking parameters", () => {
    expect(redactUrl("mysql://app:hunter2@db:3306/x")).toBe("mysql://app:[redacted]@db:3306/x");
    expect(redactUrl("redis://h:6379/0?password=abc&db=1")).toBe("redis://h:6379/0?password=[redacted]&db=1");
    expect(redactUrl("sqlite:/var/lib/p.db")).toBe("sqlite:/var/lib/p.db");
    const shown = JSON.stringify(redactedConfig(loadConfig({ PERSISTENCE_SQL_URL: "mysql://app:hunter2@db:3306/x" })));
    expect(shown).not.toContain("hunter2");
    expect(shown).toContain("mysql://app:[redacted]@db:3306/x");
  });
});

describe("security settings", () => {
  const KEY = "a-sufficiently-long-key";
  const SHA = "a".repeat(64);

  it("keeps only the SHA-256 of each API key, with its name and scopes", () => {
    const config = loadConfig({
      PERSISTENCE_API_KEYS: JSON.stringify([
        { name: "backend", key: KEY, scopes: ["translation:write"] },
        { name: "ops", key_sha256: SHA.toUpperCase(), scopes: ["system:read", "translation:read"] },
      ]),
    });
    expect(config.apiKeys).toEqual([
      { name: "backend", sha256: createHash("sha256").update(KEY).digest("hex"), scopes: ["translation:write"] },
      { name: "ops", sha256: SHA, scopes: ["system:read", "translation:read"] },
    ]);
    expect(JSON.stringify(config)).not.toContain(KEY);
    expect(redactedConfig(config).api_keys).toEqual([
      { name: "backend", scopes: ["translation:write"] },
      { name: "ops", scopes: ["system:read", "translation:read"] },
    ]);
  });

  it("reads keys from PERSISTENCE_API_KEYS_FILE (YAML or JSON) and from the config file", () => {
    const keys = file("keys.yaml", `- name: backend\n  key: ${KEY}\n  scopes: [translation:write]\n`);
    expect(loadConfig({ PERSISTENCE_API_KEYS_FILE: keys }).apiKeys.map((k) => k.name)).toEqual(["backend"]);
    const settings = file("settings.yaml", `api_keys:\n  - name: ops\n    key: ${KEY}\n    scopes: [admin]\n`);
    expect(loadConfig({ PERSISTENCE_CONFIG: settings }).apiKeys.map((k) => k.scopes)).toEqual([["admin"]]);
  });

  it.each([
    ["not json", /expected a JSON array/],
    [{ name: "x" }, /expected a JSON array/],
    [[{ name: "x", key: "short", scopes: ["admin"] }], /\[0\]\.key: must be at least 16 characters/],
    [[{ name: "x", key: KEY, key_sha256: SHA, scopes: ["admin"] }], /\[0\]: give exactly one of key and key_sha256/],
    [[{ name: "x", key_sha256: "abc", scopes: ["admin"] }], /\[0\]\.key_sha256: expected 64 hex digits/],
    [[{ name: "x", key: KEY, scopes: ["translation:everything"] }], /\[0\]\.scopes: unknown scope "translation:everything"/],
    [[{ name: "x", key: KEY, scopes: [] }], /\[0\]\.scopes: expected a non-empty array/],
    [[{ name: "x", key: KEY, scopes: ["admin"] }, { name: "x", key: `${KEY}2`, scopes: ["admin"] }], /\[1\]\.name: x is used twice/],
    [[{ name: "x", key: KEY, scopes: ["admin"] }, { name: "y", key: KEY, scopes: ["admin"] }], /\[1\]: the same key is configured twice/],
  ])("refuses the API keys %j, naming the entry at fault", (value, message) => {
    expect(() => loadConfig({ PERSISTENCE_API_KEYS: typeof value === "string" ? value : JSON.stringify(value) })).toThrow(message);
  });

  it("refuses to listen beyond loopback without keys, unless told to accept the risk", () => {
    expect(() => loadConfig({ PERSISTENCE_LISTEN: "0.0.0.0:8001" })).toThrow(/PERSISTENCE_LISTEN: 0\.0\.0\.0 is reachable beyond this machine and no API keys/);
    expect(() => loadConfig({ PERSISTENCE_LISTEN: "[::]:8001" })).toThrow(ConfigError);
    expect(loadConfig({ PERSISTENCE_LISTEN: "0.0.0.0:8001", PERSISTENCE_ALLOW_INSECURE: "1" }).allowInsecure).toBe(true);
    const keys = JSON.stringify([{ name: "k", key: KEY, scopes: ["admin"] }]);
    expect(loadConfig({ PERSISTENCE_LISTEN: "0.0.0.0:8001", PERSISTENCE_API_KEYS: keys }).listen.host).toBe("0.0.0.0");
    for (const host of ["127.0.0.1", "127.0.0.2", "localhost", "[::1]"]) expect(() => loadConfig({ PERSISTENCE_LISTEN: `${host}:1` })).not.toThrow();
  });

  it("reads the open endpoints and wants both TLS files or neither", () => {
    expect(loadConfig({ PERSISTENCE_OPEN_ENDPOINTS: "metrics, health" }).openEndpoints).toEqual(["metrics", "health"]);
    expect(() => loadConfig({ PERSISTENCE_OPEN_ENDPOINTS: "health,docs" })).toThrow(/PERSISTENCE_OPEN_ENDPOINTS: expected/);
    expect(() => loadConfig({ PERSISTENCE_TLS_CERT: file("cert.pem", "x") })).toThrow(/give both or neither/);
    expect(() => loadConfig({ PERSISTENCE_TLS_CERT: path.join(tmp, "missing.pem"), PERSISTENCE_TLS_KEY: file("key.pem", "x") })).toThrow(/PERSISTENCE_TLS_CERT: cannot read/);
  });
});

describe("backend roles in the configuration", () => {
  const S3 = "http://AKIA:s3cr3t-value@127.0.0.1:8080/files?region=us-east-1";

  it("sends each role to its embedded default when no URL is set, and to the real backend when one is", () => {
    const embedded = loadConfig({});
    expect(["sql", "objects", "kv", "search", "events"].map((role) => backendFor(embedded, "translation", role as Role))).toEqual(["sql", "local", "sql", "sql", "memory"]);
    const real = loadConfig({
      PERSISTENCE_S3_URL: S3,
      PERSISTENCE_REDIS_URL: "redis://127.0.0.1:6379/0",
      PERSISTENCE_OPENSEARCH_URL: "http://127.0.0.1:9200",
      PERSISTENCE_EVENTS_URL: "nats://127.0.0.1:4222",
    });
    expect(["objects", "kv", "search", "events"].map((role) => backendFor(real, "translation", role as Role))).toEqual(["s3", "redis", "opensearch", "nats"]);
  });

  it("routes one module's role elsewhere, from the environment or the config file's routes mapping", () => {
    const fromEnv = loadConfig({ PERSISTENCE_REDIS_URL: "redis://127.0.0.1:6379/0", PERSISTENCE_ROUTES: "translation.kv=sql" });
    expect(backendFor(fromEnv, "translation", "kv")).toBe("sql");
    expect(backendFor(fromEnv, "system", "kv")).toBe("redis");
    const fromFile = loadConfig({ PERSISTENCE_CONFIG: file("routes.yaml", "redis_url: redis://127.0.0.1:6379/0\nroutes:\n  system.kv: sql\n") });
    expect(fromFile.routes).toEqual({ "system.kv": "sql" });
    expect(redactedConfig(fromFile).routes).toBe("system.kv=sql");
  });

  it.each([
    ["nobody.kv=sql", /"nobody.kv" is not <module>.<role>/],
    ["translation.cache=sql", /unknown role "cache"/],
    ["translation.kv=memcached", /the kv role's backends are sql, redis, not "memcached"/],
    ["translation.kv=redis", /translation.kv=redis needs PERSISTENCE_REDIS_URL/],
  ])("refuses the route %s with a message naming it", (routes, message) => {
    expect(() => loadConfig({ PERSISTENCE_ROUTES: routes })).toThrow(message);
  });

  it("refuses a malformed S3 URL naming the variable, never repeating the secret", () => {
    const bad = "ftp://AKIA:s3cr3t-value@127.0.0.1:8080/files";
    let message = "";
    try {
      loadConfig({ PERSISTENCE_S3_URL: bad });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      message = (err as Error).message;
    }
    expect(message).toMatch(/^PERSISTENCE_S3_URL: the scheme must be http or https/);
    expect(message).not.toContain("s3cr3t-value");
    expect(JSON.stringify(redactedConfig(loadConfig({ PERSISTENCE_S3_URL: S3 })))).not.toContain("s3cr3t-value");
  });

  it("reads each module's settings as its own section, and shows them in GetConfig", () => {
    const config = loadConfig({ PERSISTENCE_MAX_BATCH_RECORDS: "50", PERSISTENCE_CLEANUP_INTERVAL_MS: "0" });
    expect(config.modules.translation).toMatchObject({ maxBatchRecords: 50, cleanupIntervalMs: 0 });
    expect(redactedConfig(config)).toMatchObject({ max_batch_records: 50, cleanup_interval_ms: 0 });
    expect(() => loadConfig({ PERSISTENCE_MAX_BATCH_RECORDS: "0" })).toThrow(/^PERSISTENCE_MAX_BATCH_RECORDS: expected an integer from 1 to 100000/);
    const unknown: UnknownSetting[] = [];
    loadConfig({ PERSISTENCE_MAX_BATCH_RECORD: "5" }, (u) => unknown.push(u));
    expect(unknown).toEqual([{ setting: "PERSISTENCE_MAX_BATCH_RECORD", closest: "PERSISTENCE_MAX_BATCH_RECORDS" }]);
  });
});
