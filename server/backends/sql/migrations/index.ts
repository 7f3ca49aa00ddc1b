import type { Migration, MigrationProvider } from "kysely";
import * as translationTables from "./2026_11_29_000000_translation_tables.js";
import * as fieldStamps from "./2026_11_29_100000_field_stamps_and_dead_letters.js";
import * as tombstones from "./2026_11_29_200000_session_tombstones.js";
import * as leases from "./2026_11_29_300000_leases.js";
import * as filterIndexes from "./2026_11_29_400000_filter_indexes.js";
import * as deadLettersWritePath from "./2026_12_01_100000_dead_letters_write_path.js";

/**
 * Every migration, by name. Static imports rather than a folder scan keep the set identical under
 * tsc output, the test runner and bundlers. Names start with a UTC timestamp; order matters.
 */
const migrations: Record<string, Migration> = {
  "2026_11_29_000000_translation_tables": translationTables,
  "2026_11_29_100000_field_stamps_and_dead_letters": fieldStamps,
  "2026_11_29_200000_session_tombstones": tombstones,
  "2026_11_29_300000_leases": leases,
  "2026_11_29_400000_filter_indexes": filterIndexes,
  "2026_12_01_100000_dead_letters_write_path": deadLettersWritePath,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => migrations,
};
