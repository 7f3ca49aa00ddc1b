/**
 * Who may call what. A key carries scopes; every RPC needs one, declared in RPC_SCOPES below (a test
 * fails when a served RPC has none). Scopes nest: `<area>:admin` grants `<area>:write`, which grants
 * `<area>:read`; `admin` grants everything.
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

const read = (area: Area): Requirement => ({ scope: `${area}:read` });
const write = (area: Area): Requirement => ({ scope: `${area}:write` });
const admin = (area: Area): Requirement => ({ scope: `${area}:admin` });
const HEALTH: Requirement = { scope: "system:read", openWith: "health" };

/** The one declaration of the scope each RPC needs, by `/<service>/<method>` path. */
export const RPC_SCOPES: Readonly<Record<string, Requirement>> = {
  "/persistence.v1.TranslationService/BatchUpsertSessions": write("translation"),
  "/persistence.v1.TranslationService/BatchUpsertTasks": write("translation"),
  "/persistence.v1.TranslationService/Flush": write("translation"),
  "/persistence.v1.TranslationService/GetSession": read("translation"),
  "/persistence.v1.TranslationService/ListSessions": read("translation"),
  "/persistence.v1.TranslationService/ListSessionTasks": read("translation"),
  "/persistence.v1.TranslationService/GetTask": read("translation"),
  "/persistence.v1.TranslationService/ListTasks": read("translation"),
  "/persistence.v1.TranslationService/DeleteSession": admin("translation"),
  "/persistence.v1.TranslationService/UpdateSessionStatus": admin("translation"),
  "/persistence.v1.TranslationService/CleanupSessions": admin("translation"),
  "/persistence.v1.TranslationService/GetStats": read("translation"),
  "/persistence.v1.TranslationService/ListIncompleteSessions": read("translation"),
  "/persistence.v1.TranslationService/RestoreSession": read("translation"),
  "/persistence.v1.TranslationService/StreamRestoreSession": read("translation"),
  "/persistence.v1.TranslationService/GetRecoveryStatus": read("translation"),
  "/persistence.v1.TranslationService/WatchSession": read("translation"),
  "/persistence.v1.SystemService/GetHealth": HEALTH,
  "/persistence.v1.SystemService/GetMetrics": read("system"),
  "/persistence.v1.SystemService/GetConfig": { scope: "admin" },
  "/persistence.v1.SystemService/GetInfo": read("system"),
  "/persistence.v1.SystemService/Echo": read("system"),
  "/grpc.health.v1.Health/Check": HEALTH,
  "/grpc.health.v1.Health/Watch": HEALTH,
  "/grpc.health.v1.Health/List": HEALTH,
  "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo": read("system"),
  "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": read("system"),
};

/** `GET /metrics` (Prometheus text) is not an RPC; it needs this. */
export const METRICS_REQUIREMENT: Requirement = { scope: "system:read", openWith: "metrics" };
