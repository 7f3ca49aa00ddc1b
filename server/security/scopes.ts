/**
 * Who may call what. A key carries scopes; every RPC needs one, declared in the contract with the
 * `(persistence.v1.access)` method option (see access.ts: a served RPC without one stops the start-up).
 * Scopes nest: `<area>:admin` grants `<area>:write`, which grants `<area>:read`; `admin` grants everything.
 */

export const AREAS = ["translation", "system", "files", "users", "audit"] as const;
export const LEVELS = ["read", "write", "admin"] as const;
export type Area = (typeof AREAS)[number];
export type Scope = `${Area}:${(typeof LEVELS)[number]}` | "admin";

/** Every scope a key may be given. */
export const SCOPES: readonly Scope[] = ["admin", ...AREAS.flatMap((a) => LEVELS.map((l) => `${a}:${l}` as Scope))];

export function isScope(value: string): value is Scope {
  return (SCOPES as readonly string[]).includes(value);
}

/** Whether a key holding `held` may call something that needs `required`. */
export function grants(held: readonly Scope[], required: Scope): boolean {
  if (held.includes("admin")) return true;
  if (required === "admin") return false;
  const [area, level] = required.split(":") as [Area, (typeof LEVELS)[number]];
  const needed = LEVELS.indexOf(level);
  return held.some((scope) => {
    const [a, l] = scope.split(":");
    return a === area && LEVELS.indexOf(l as (typeof LEVELS)[number]) >= needed;
  });
}

/** What an RPC needs: a scope, and optionally an endpoint group that configuration can leave open. */
export interface Requirement {
  readonly scope: Scope;
  /** `PERSISTENCE_OPEN_ENDPOINTS` naming this group lets callers in without a key. */
  readonly openWith?: "health" | "metrics";
}

/** The health RPCs, open to callers without a key when PERSISTENCE_OPEN_ENDPOINTS says `health`. */
export const HEALTH_REQUIREMENT: Requirement = { scope: "system:read", openWith: "health" };

/** `GET /metrics` (Prometheus text) is not an RPC; it needs this. */
export const METRICS_REQUIREMENT: Requirement = { scope: "system:read", openWith: "metrics" };
