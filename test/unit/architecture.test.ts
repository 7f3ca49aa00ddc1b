import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";

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

const DRIVERS = ["mysql2", "mysql2/promise", "better-sqlite3", "ioredis", "minio", "nats", "@opensearch-project/opensearch"];

describe("the architecture", () => {
  it("lets only server/backends/ import a database, cache, store, search or bus driver", () => {
    const offenders = sources()
      .filter((file) => !file.startsWith(`backends${path.sep}`))
      .flatMap((file) => importsOf(file).filter((spec) => DRIVERS.some((d) => spec === d || spec.startsWith(`${d}/`))).map((spec) => `${file} imports ${spec}`));
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
  });
});
