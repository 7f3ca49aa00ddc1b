"use strict";
// The local MariaDB (127.0.0.1:3306, root): fresh databases, its own status counters, its settings.
const path = require("node:path");
const mysql = require("mysql2/promise");
const { ROOT } = require("./service");

const SERVER = { host: "127.0.0.1", port: 3306, user: "root" };
const url = (database) => `mysql://root@127.0.0.1:3306/${database}`;

/** Drops `name` and creates it again with the service's schema (its own migrations). */
async function freshDatabase(name) {
  const conn = await mysql.createConnection(SERVER);
  await conn.query(`drop database if exists \`${name}\``);
  await conn.end();
  const { openServiceSql } = require(path.join(ROOT, "dist/server/schema.js"));
  await (await openServiceSql(url(name))).close();
}

async function dropDatabase(name) {
  const conn = await mysql.createConnection(SERVER);
  await conn.query(`drop database if exists \`${name}\``);
  await conn.end();
}

const COUNTERS = ["Com_insert", "Com_update", "Com_delete", "Com_select", "Com_commit", "Com_begin", "Questions"];

/** MariaDB's global statement counters. */
async function counters() {
  const conn = await mysql.createConnection(SERVER);
  const [rows] = await conn.query(`show global status where Variable_name in (${COUNTERS.map(() => "?").join(",")})`, COUNTERS);
  await conn.end();
  return Object.fromEntries(rows.map((r) => [r.Variable_name, Number(r.Value)]));
}

/** Counter increments between two readings, per 1,000 records. */
function per1000(before, after, records) {
  return Object.fromEntries(COUNTERS.map((k) => [k, Math.round(((after[k] - before[k]) / records) * 1000 * 100) / 100]));
}

/** Version and the settings that decide write speed. */
async function facts() {
  const conn = await mysql.createConnection(SERVER);
  const [[{ version }]] = await conn.query("select version() as version");
  const names = ["innodb_flush_log_at_trx_commit", "sync_binlog", "log_bin", "innodb_buffer_pool_size", "innodb_log_file_size", "innodb_doublewrite", "max_allowed_packet"];
  const [rows] = await conn.query(`show global variables where Variable_name in (${names.map(() => "?").join(",")})`, names);
  await conn.end();
  return { version, ...Object.fromEntries(rows.map((r) => [r.Variable_name, r.Value])) };
}

/** The server's process id (from its pid file), for its CPU time; undefined when it cannot be read. */
async function pid() {
  const conn = await mysql.createConnection(SERVER);
  try {
    const [[{ file }]] = await conn.query("select @@pid_file as file");
    return Number(require("node:fs").readFileSync(file, "utf8").trim()) || undefined;
  } catch {
    return undefined;
  } finally {
    await conn.end();
  }
}

module.exports = { SERVER, url, freshDatabase, dropDatabase, counters, per1000, facts, pid };
