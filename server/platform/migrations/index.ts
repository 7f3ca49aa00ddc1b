import type { Migration } from "kysely";
import * as deadLetters from "./2026_11_29_100001_dead_letters.js";
import * as leases from "./2026_11_29_300000_leases.js";
import * as deadLettersWritePath from "./2026_12_01_100000_dead_letters_write_path.js";
import * as kv from "./2026_12_01_221756_kv.js";

/**
 * The platform's own tables: dead letters (every write path's), leases (scheduled jobs) and the
 * embedded kv store. Static imports rather than a folder scan keep the set identical under tsc
 * output, the test runner and bundlers. Names start with a UTC timestamp.
 */
export const PLATFORM_MIGRATIONS: Readonly<Record<string, Migration>> = {
  "2026_11_29_100001_dead_letters": deadLetters,
  "2026_11_29_300000_leases": leases,
  "2026_12_01_100000_dead_letters_write_path": deadLettersWritePath,
  "2026_12_01_221756_kv": kv,
};
