/**
 * Who may call what. A key carries scopes; every RPC needs one, declared in the contract with the
 * `(persistence.v1.access)` method option (see access.ts: a served RPC without one stops the start-up).
 * Scopes nest: `<area>:admin` grants `<area>:write`, which grants `<area>:read`; `admin` grants everything.
 */
import { MODULES } from "../modules.js";

export const LEVELS = ["read", "write", "admin"] as const;
/** A module's name (server/modules.ts): each module is one area of scopes. */
export type Area = string;
export type Scope = `${Area}:${(typeof LEVELS)[number]}` | "admin";

/** The scope areas: one per module, in module order. */
export function areas(): string[] {
  return MODULES.map((m) => m.name);
}

/** Every scope a key may be given. */
export function scopes(): Scope[] {
  return ["admin", ...areas().flatMap((a) => LEVELS.map((l) => `${a}:${l}` as Scope))];
}

export function isScope(value: string): value is Scope {
  return scopes().includes(value as Scope);
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
