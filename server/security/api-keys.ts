import { createHash } from "node:crypto";
import type { Scope } from "./scopes.js";

/** A configured key: its name, the SHA-256 of the key (never the key itself) and its scopes. */
export interface ApiKey {
  readonly name: string;
  /** Hex SHA-256 of the key. */
  readonly sha256: string;
  readonly scopes: readonly Scope[];
}

/** Who a call comes from. */
export interface Principal {
  readonly name: string;
  readonly scopes: readonly Scope[];
}

export function sha256Hex(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

/**
 * The key a request presents: `Authorization: Bearer <key>` or `x-api-key: <key>`. Undefined when it
 * presents none.
 */
export function presentedKey(header: (name: string) => string | null | undefined): string | undefined {
  const authorization = header("authorization");
  if (authorization) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    return match ? match[1] : "";
  }
  const key = header("x-api-key");
  return key === null || key === undefined ? undefined : key.trim();
}

/** Looks keys up by the hash of what a caller presents. */
export function createKeyring(keys: readonly ApiKey[]): { readonly enabled: boolean; find(key: string): Principal | undefined } {
  const byHash = new Map(keys.map((k) => [k.sha256, { name: k.name, scopes: k.scopes }]));
  return {
    enabled: keys.length > 0,
    find: (key) => byHash.get(sha256Hex(key)),
  };
}
