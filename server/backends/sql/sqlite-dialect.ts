import { setImmediate as turn } from "node:timers/promises";
import type Database from "better-sqlite3";
import { SqliteDialect, type DatabaseConnection, type Driver, type QueryResult, type CompiledQuery } from "kysely";
import { LRUCache } from "lru-cache";

/** Prepared statements kept per connection (SQL texts differ by row count, so a flush has a few shapes). */
const STATEMENT_CACHE = 256;

/**
 * Kysely's SQLite dialect over better-sqlite3, with two changes that matter to a service sharing one
 * thread between SQL and its callers:
 * - each SQL text is prepared once and the statement reused (Kysely prepares on every call: a fifth of
 *   the time of a flush's statements);
 * - after each statement outside a transaction, and after each commit or rollback, the event loop takes a
 *   turn. better-sqlite3 runs statements synchronously and Kysely's promises resolve at once, so a run of
 *   statements (a projection catching up, a retention sweep) would otherwise keep every acknowledgement
 *   waiting on its log write, every ping and every response until the run ends. Never inside a
 *   transaction: another connection of this process to the same file (two instances in one test
 *   process, a tool) would then wait for its lock in SQLite's busy handler, which blocks this very
 *   thread, and the transaction holding the lock could not go on.
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
  return new (class extends SqliteDialect {
    override createDriver(): Driver {
      return yielding(super.createDriver());
    }
  })({ database: cached as unknown as Database.Database });
}

/** The driver, each statement outside a transaction (and each commit or rollback) followed by a turn of the event loop. */
function yielding(driver: Driver): Driver {
  const inTransaction = new WeakSet<DatabaseConnection>();
  const wrapped = new WeakMap<DatabaseConnection, DatabaseConnection>();
  const wrap = (connection: DatabaseConnection): DatabaseConnection => {
    let outer = wrapped.get(connection);
    if (!outer) {
      const self: DatabaseConnection = {
        async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
          try {
            return await connection.executeQuery<R>(query);
          } finally {
            if (!inTransaction.has(self)) await turn();
          }
        },
        streamQuery: <R>(query: CompiledQuery, chunkSize?: number) => connection.streamQuery<R>(query, chunkSize),
      };
      outer = self;
      wrapped.set(connection, outer);
    }
    return outer;
  };
  const ending = async (connection: DatabaseConnection, end: () => Promise<void>) => {
    try {
      await end();
    } finally {
      inTransaction.delete(connection);
      await turn();
    }
  };
  // The SQLite driver runs begin, commit and savepoints through the connection it is given: the wrapper.
  return {
    init: () => driver.init(),
    acquireConnection: async () => wrap(await driver.acquireConnection()),
    beginTransaction: async (connection, settings) => {
      inTransaction.add(connection);
      try {
        await driver.beginTransaction(connection, settings);
      } catch (err) {
        inTransaction.delete(connection);
        throw err;
      }
    },
    commitTransaction: (connection) => ending(connection, () => driver.commitTransaction(connection)),
    rollbackTransaction: (connection) => ending(connection, () => driver.rollbackTransaction(connection)),
    savepoint: (connection, name, compile) => driver.savepoint!(connection, name, compile),
    rollbackToSavepoint: (connection, name, compile) => driver.rollbackToSavepoint!(connection, name, compile),
    releaseSavepoint: (connection, name, compile) => driver.releaseSavepoint!(connection, name, compile),
    releaseConnection: (connection) => driver.releaseConnection(connection),
    destroy: () => driver.destroy(),
  };
}
