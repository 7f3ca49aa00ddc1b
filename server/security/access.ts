import { getOption, hasOption, type DescMethod, type DescService } from "@bufbuild/protobuf";
import { access } from "../../gen/persistence/v1/access_pb.js";
import { isScope, type Requirement } from "./scopes.js";

/** What each RPC needs, by `/<service>/<method>` path. */
export type AccessTable = ReadonlyMap<string, Requirement>;

/** A service whose RPCs carry no `(persistence.v1.access)` option (a vendored contract, kept as published) and the access they all need. */
export interface VendoredAccess {
  readonly service: DescService;
  readonly requirement: Requirement;
}

const OPEN_GROUPS = ["health", "metrics"] as const;

/**
 * Reads the `(persistence.v1.access)` option of every RPC of `services` (vendored ones take theirs from
 * `vendored`). Throws, naming the RPC, when one declares none or an unknown scope: an RPC nobody
 * declared access for must stop the start-up, not be served open or refused at run time.
 */
export function readAccessTable(services: readonly DescService[], vendored: readonly VendoredAccess[] = []): AccessTable {
  const table = new Map<string, Requirement>();
  for (const service of services) {
    for (const method of service.methods) table.set(rpcPath(method), requirementOf(method));
  }
  for (const { service, requirement } of vendored) {
    for (const method of service.methods) table.set(rpcPath(method), requirement);
  }
  return table;
}

export function rpcPath(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

function requirementOf(method: DescMethod): Requirement {
  const where = `${method.parent.typeName}.${method.name}`;
  if (!hasOption(method, access)) throw new Error(`${where} declares no (persistence.v1.access) option: say which scope it needs`);
  const { scope, openWith } = getOption(method, access);
  if (!isScope(scope)) throw new Error(`${where}: (persistence.v1.access).scope "${scope}" is not a scope`);
  if (openWith === "") return { scope };
  if (!(OPEN_GROUPS as readonly string[]).includes(openWith)) {
    throw new Error(`${where}: (persistence.v1.access).open_with "${openWith}" is not one of ${OPEN_GROUPS.join(", ")}`);
  }
  return { scope, openWith: openWith as (typeof OPEN_GROUPS)[number] };
}
