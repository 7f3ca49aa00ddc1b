/** Where the SQL store lives, parsed from `PERSISTENCE_SQL_URL`. */
export type SqlTarget =
  | { readonly dialect: "sqlite"; readonly file: string }
  | {
      readonly dialect: "mysql";
      readonly host: string;
      readonly port: number;
      readonly user: string;
      readonly password: string;
      readonly database: string;
      /** Pool size from `?connection_limit=`, default 8. */
      readonly connectionLimit: number;
    };

/** Parses `sqlite:<path>` (`sqlite::memory:` for a private in-memory store) or `mysql://user:pass@host:port/db`. */
export function parseSqlUrl(url: string): SqlTarget {
  if (url.startsWith("sqlite:")) return { dialect: "sqlite", file: url.slice("sqlite:".length) };
  const parsed = new URL(url);
  if (parsed.protocol !== "mysql:") throw new Error(`unsupported SQL URL scheme ${parsed.protocol}`);
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ""));
  if (!/^[A-Za-z0-9_$]{1,64}$/.test(database)) throw new Error(`invalid database name ${JSON.stringify(database)}`);
  const limit = Number(parsed.searchParams.get("connection_limit") ?? 8);
  return {
    dialect: "mysql",
    host: parsed.hostname.replace(/^\[|\]$/g, ""),
    port: parsed.port ? Number(parsed.port) : 3306,
    user: decodeURIComponent(parsed.username || "root"),
    password: decodeURIComponent(parsed.password),
    database,
    connectionLimit: Number.isInteger(limit) && limit > 0 ? limit : 8,
  };
}
