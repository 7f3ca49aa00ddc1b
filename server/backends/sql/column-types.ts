import { MysqlAdapter, sql, type Kysely, type RawBuilder } from "kysely";

/**
 * Column types that mean the same on MySQL/MariaDB and SQLite, so one migration serves both.
 * Times are BIGINT microseconds since the Unix epoch (UTC): exact, cheap to compare in the upsert's
 * ordering guard, and free of time-zone conversion in either driver.
 */
export interface ColumnTypes {
  /** Identifiers: ASCII, compared byte for byte. */
  id(length: number): RawBuilder<unknown>;
  /** Bounded user text, compared byte for byte so both dialects sort it alike. */
  varchar(length: number): RawBuilder<unknown>;
  /** Up to 65,535 bytes of UTF-8. */
  text(): RawBuilder<unknown>;
  /** A JSON document. */
  json(): RawBuilder<unknown>;
  /** Microseconds since the epoch. */
  micros(): RawBuilder<unknown>;
  integer(): RawBuilder<unknown>;
  double(): RawBuilder<unknown>;
  /** A 64-bit auto-increment primary key. */
  serial(): RawBuilder<unknown>;
  /** Table options appended to CREATE TABLE. */
  tableOptions(): RawBuilder<unknown>;
}

export function isMysql(db: Kysely<unknown>): boolean {
  return db.getExecutor().adapter instanceof MysqlAdapter;
}

export function columnTypes(db: Kysely<unknown>): ColumnTypes {
  if (isMysql(db)) {
    return {
      id: (n) => sql.raw(`varchar(${n}) character set ascii collate ascii_bin`),
      varchar: (n) => sql.raw(`varchar(${n})`),
      text: () => sql.raw("text"),
      json: () => sql.raw("longtext"),
      micros: () => sql.raw("bigint"),
      integer: () => sql.raw("int"),
      double: () => sql.raw("double"),
      serial: () => sql.raw("bigint auto_increment"),
      tableOptions: () => sql.raw("engine=InnoDB default charset=utf8mb4 collate=utf8mb4_bin"),
    };
  }
  return {
    id: () => sql.raw("text"),
    varchar: () => sql.raw("text"),
    text: () => sql.raw("text"),
    json: () => sql.raw("text"),
    micros: () => sql.raw("integer"),
    integer: () => sql.raw("integer"),
    double: () => sql.raw("real"),
    serial: () => sql.raw("integer"),
    tableOptions: () => sql.raw(""),
  };
}
