import type { Migration } from "kysely";
import * as fileMetadata from "./2026_12_02_010000_file_metadata.js";

/** The files domain's tables, by migration name (a UTC timestamp first). */
export const FILES_MIGRATIONS: Readonly<Record<string, Migration>> = {
  "2026_12_02_010000_file_metadata": fileMetadata,
};
