import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { MODULES } from "../../server/modules";

const SERVER = path.resolve(__dirname, "..", "..", "server");

/** Every .ts file under `dir`, relative to server/. */
function sources(dir = SERVER): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sources(full);
    return entry.name.endsWith(".ts") ? [path.relative(SERVER, full)] : [];
  });
}

/** The module specifiers a file imports (static imports and re-exports). */
function importsOf(file: string): string[] {
  const text = readFileSync(path.join(SERVER, file), "utf8");
  return [...text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+"([^"]+)"/gms)].map((m) => m[1]!);
}

/** What a domain may import from server/backends/: the role interfaces, never an implementation. */
const ROLE_INTERFACES = [
  "backends/backend.js",
  "backends/sql/sql-store.js",
  "backends/sql/column-types.js",
  "backends/objects/object-store.js",
  // the role's HTTP side: Range headers and serving the local store's presigned URLs
  "backends/objects/object-http.js",
  "backends/kv/kv-store.js",
  "backends/events/event-bus.js",
  "backends/search/search-index.js",
];

/** The folders of the modules (server/modules.ts) and the shared record machinery they build on. */
const DOMAIN_FOLDERS = [...MODULES.map((m) => m.name), "records"];

const DRIVERS = ["mysql2", "mysql2/promise", "better-sqlite3", "ioredis", "minio", "nats", "@opensearch-project/opensearch"];

describe("the architecture", () => {
  it("lets only server/backends/ import a database, cache, store, search or bus driver", () => {
    const offenders = sources()
      .filter((file) => !file.startsWith(`backends${path.sep}`))
      .flatMap((file) => importsOf(file).filter((spec) => DRIVERS.some((d) => spec === d || spec.startsWith(`${d}/`))).map((spec) => `${file} imports ${spec}`));
    expect(offenders).toEqual([]);
  });

  it("lets a domain folder reach backends only through the role interfaces (no driver, no implementation file)", () => {
    expect(DOMAIN_FOLDERS).toEqual(expect.arrayContaining(["translation", "system"]));
    const offenders = sources()
      .filter((file) => DOMAIN_FOLDERS.some((folder) => file.startsWith(`${folder}${path.sep}`)))
      .flatMap((file) =>
        importsOf(file)
          .filter((spec) => {
            if (DRIVERS.some((d) => spec === d || spec.startsWith(`${d}/`))) return true;
            const resolved = path.relative(SERVER, path.resolve(SERVER, path.dirname(file), spec)).split(path.sep).join("/");
            return resolved.startsWith("backends/") && !ROLE_INTERFACES.includes(resolved);
          })
          .map((spec) => `${file} imports ${spec}`),
      );
    expect(offenders).toEqual([]);
  });

  it("keeps server/http/ out of the RPC interceptors (shared helpers live in core/ or rpc/context.ts)", () => {
    const offenders = sources()
      .filter((file) => file.startsWith(`http${path.sep}`))
      .flatMap((file) => importsOf(file).filter((spec) => spec.includes("rpc/interceptors/")).map((spec) => `${file} imports ${spec}`));
    expect(offenders).toEqual([]);
  });

  it("finds the imports it checks (the check itself works)", () => {
    expect(importsOf(path.join("backends", "sql", "sql-backend.ts"))).toEqual(expect.arrayContaining(["better-sqlite3", "kysely"]));
    expect(importsOf(path.join("translation", "translation.module.ts"))).toEqual(expect.arrayContaining(["../platform/module.js"]));
  });
});
