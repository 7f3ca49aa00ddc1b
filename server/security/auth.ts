import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { principalKey } from "../rpc/context.js";
import { createKeyring, presentedKey, type ApiKey, type Principal } from "./api-keys.js";
import type { AccessTable } from "./access.js";
import { grants, type Requirement } from "./scopes.js";

export type HeaderReader = (name: string) => string | null | undefined;

export interface Authenticator {
  /** False when no keys are configured: every caller is let in (the listener is then loopback only). */
  readonly enabled: boolean;
  /** Checks a caller against a requirement: the principal (undefined when open), or the error to answer. */
  check(requirement: Requirement | undefined, header: HeaderReader): Principal | ConnectError | undefined;
  /** The same for the RPC at `path` (`/<service>/<method>`); an RPC with no declared scope is refused. */
  checkRpc(path: string, header: HeaderReader): Principal | ConnectError | undefined;
  /** Applies `checkRpc` to every call and puts the principal in the call context. */
  readonly interceptor: Interceptor;
}

export interface AuthOptions {
  readonly apiKeys: readonly ApiKey[];
  readonly openEndpoints: readonly ("health" | "metrics")[];
  /** What each RPC needs, read from the contract (see access.ts). */
  readonly access: AccessTable;
}

/** API-key authentication and scope checks for every protocol (REST included: it calls the same handlers). */
export function createAuthenticator(options: AuthOptions): Authenticator {
  const keyring = createKeyring(options.apiKeys);
  const check = (requirement: Requirement | undefined, header: HeaderReader): Principal | ConnectError | undefined => {
    if (!keyring.enabled) return undefined;
    if (!requirement) return new ConnectError("this call has no declared scope, so no key may make it", Code.PermissionDenied);
    if (requirement.openWith && options.openEndpoints.includes(requirement.openWith)) return undefined;
    const key = presentedKey(header);
    if (key === undefined) return unauthenticated("missing API key: send Authorization: Bearer <key> or x-api-key: <key>");
    if (key === "") return unauthenticated("malformed Authorization header: expected Bearer <key>");
    const principal = keyring.find(key);
    if (!principal) return unauthenticated("unknown API key");
    if (!grants(principal.scopes, requirement.scope)) {
      return new ConnectError(`API key "${principal.name}" lacks the scope ${requirement.scope}`, Code.PermissionDenied);
    }
    return principal;
  };
  const checkRpc = (path: string, header: HeaderReader) => check(options.access.get(path), header);
  return {
    enabled: keyring.enabled,
    check,
    checkRpc,
    interceptor: (next) => (req) => {
      const result = checkRpc(`/${req.service.typeName}/${req.method.name}`, (name) => req.header.get(name));
      if (result instanceof ConnectError) throw result;
      if (result) req.contextValues.set(principalKey, result);
      return next(req);
    },
  };
}

function unauthenticated(message: string): ConnectError {
  return new ConnectError(message, Code.Unauthenticated, { "www-authenticate": 'Bearer realm="persistence"' });
}
