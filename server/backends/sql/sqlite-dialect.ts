import type Database from "better-sqlite3";
import { SqliteDialect } from "kysely";
import { LRUCache } from "lru-cache";

/** Prepared statements kept per connection (SQL texts differ by row count, so a flush has a few shapes). */
const STATEMENT_CACHE = 256;

/**
 * Kysely's SQLite dialect over better-sqlite3, each SQL text prepared once and the statement reused
 * (Kysely prepares on every call: a fifth of the time of a flush's statements).
 *
 * Statements still run one after another without a turn of the event loop between them. Yielding
 * there (after each statement outside a transaction, say) was tried: two connections of one process to
 * the same file (two instances in one test process, a tool beside the service) then meet inside each
 * other's write transactions, and SQLite's busy handler waits for the lock by blocking this very thread,
 * so the transaction holding it cannot go on.
 */
export function createSqliteDialect(database: Database.Database): SqliteDialect {
  const statements = new LRUCache<string, Database.Statement>({ max: STATEMENT_CACHE });
  const cached = {
    prepare(sqlText: string): Database.Statement {
      const known = statements.get(sqlText);
      // A statement still iterating (a streamed read) cannot run again: that caller gets one of its own.
      if (known && !known.busy) return known;
      const statement = database.prepare(sqlText);
      if (!known) statements.set(sqlText, statement);
      return statement;
    },
    close() {
      statements.clear();
      database.close();
    },
  };
  return new SqliteDialect({ database: cached as unknown as Database.Database });
}
