import type { Migration } from "kysely";
import * as translationTables from "./2026_11_29_000000_translation_tables.js";
import * as fieldStamps from "./2026_11_29_100000_field_stamps_and_dead_letters.js";
import * as tombstones from "./2026_11_29_200000_session_tombstones.js";
import * as filterIndexes from "./2026_11_29_400000_filter_indexes.js";
import * as sessionCounts from "./2026_12_02_000000_session_counts.js";

/** The translation domain's tables, by migration name (a UTC timestamp first). */
export const TRANSLATION_MIGRATIONS: Readonly<Record<string, Migration>> = {
  "2026_11_29_000000_translation_tables": translationTables,
  "2026_11_29_100000_field_stamps_and_dead_letters": fieldStamps,
  "2026_11_29_200000_session_tombstones": tombstones,
  "2026_11_29_400000_filter_indexes": filterIndexes,
  "2026_12_02_000000_session_counts": sessionCounts,
};
