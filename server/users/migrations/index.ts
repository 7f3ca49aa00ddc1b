import type { Migration } from "kysely";
import * as users from "./2026_12_02_010000_users.js";

/** The users domain's tables, by migration name (a UTC timestamp first). */
export const USERS_MIGRATIONS: Readonly<Record<string, Migration>> = {
  "2026_12_02_010000_users": users,
};
