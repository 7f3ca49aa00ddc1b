import { sql, type Kysely } from "kysely";
import type { SqlDialect, TableSize } from "./sql-store.js";

/**
 * Row counts and sizes from the database's own catalog: MySQL's information_schema (row counts are
 * InnoDB's estimates there), SQLite's dbstat pages (exact counts; index pages are those of the
 * table's indexes).
 */
export async function tableSizes(db: Kysely<unknown>, dialect: SqlDialect, tables: readonly string[]): Promise<TableSize[]> {
  if (dialect === "mysql") {
    const { rows } = await sql<{ t: string; r: number | string | null; d: number | string | null; i: number | string | null }>`
      select table_name as t, table_rows as r, data_length as d, index_length as i
      from information_schema.tables where table_schema = database() and table_name in (${sql.join(tables)})`.execute(db);
    const byName = new Map(rows.map((r) => [r.t, r]));
    return tables.map((table) => {
      const r = byName.get(table);
      return { table, rows: Number(r?.r ?? 0), dataBytes: Number(r?.d ?? 0), indexBytes: Number(r?.i ?? 0) };
    });
  }
  const { rows: pages } = await sql<{ tbl: string; name: string; bytes: number }>`
    select m.tbl_name as tbl, d.name as name, sum(d.pgsize) as bytes
    from dbstat d join sqlite_schema m on m.name = d.name group by d.name`.execute(db);
  const out: TableSize[] = [];
  for (const table of tables) {
    const { rows } = await sql<{ n: number }>`select count(*) as n from ${sql.table(table)}`.execute(db);
    const own = pages.filter((p) => p.tbl === table);
    out.push({
      table,
      rows: Number(rows[0]?.n ?? 0),
      dataBytes: own.filter((p) => p.name === table).reduce((n, p) => n + Number(p.bytes), 0),
      indexBytes: own.filter((p) => p.name !== table).reduce((n, p) => n + Number(p.bytes), 0),
    });
  }
  return out;
}
