/** Times are µs since the epoch. */
export type UserRow = {
  user_id: string;
  username: string;
  /** `username` lower-cased, unique. */
  username_key: string;
  email: string;
  /** `email` lower-cased, unique. */
  email_key: string;
  display_name: string;
  status: string;
  /** `$scrypt$ln=..,r=..,p=..$<salt>$<hash>` (see users.passwords.ts). */
  password_hash: string;
  translations_used: number;
  translations_limit: number;
  /** The month `translations_used` counts, as yyyymm (UTC). */
  translations_period: number;
  storage_bytes_used: number;
  storage_bytes_limit: number;
  created_at: number;
  updated_at: number;
};

export type PreferencesRow = {
  user_id: string;
  language: string | null;
  theme: string | null;
  /** JSON objects. */
  notifications: string | null;
  custom: string | null;
  updated_at: number;
};

/** The users domain's tables, as its queries see them. */
export type UsersTables = {
  users: UserRow;
  user_preferences: PreferencesRow;
};
