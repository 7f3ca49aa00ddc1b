import type { ConnectRouter } from "@connectrpc/connect";
import type { DescService } from "@bufbuild/protobuf";
import { file_grpc_health_v1_health, Health } from "../../gen/grpc/health/v1/health_pb.js";
import { file_grpc_reflection_v1_reflection, ServerReflection } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import {
  file_grpc_reflection_v1alpha_reflection,
  ServerReflection as ServerReflectionV1alpha,
} from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import type { HealthMonitor } from "../core/health-monitor.js";
import type { BinaryMethod, ServiceBinding } from "../platform/module.js";
import { readAccessTable, type AccessTable } from "../security/access.js";
import { HEALTH_REQUIREMENT } from "../security/scopes.js";
import { registerHealth } from "./health.js";
import { createReflectionIndex, registerReflection } from "./reflection.js";

/**
 * What the listener serves: every module's services (server/modules.ts), plus gRPC health and
 * reflection. Nothing here names a domain; the lists below are derived from the modules.
 */

/** The services every instance serves besides the modules' own, as the vendored protos publish them. */
const VENDORED = [Health, ServerReflection, ServerReflectionV1alpha] as const;
const VENDORED_FILES = [file_grpc_health_v1_health, file_grpc_reflection_v1_reflection, file_grpc_reflection_v1alpha_reflection];

/** Every service the listener serves, as reflection lists them: the modules' (in module order), then health and reflection. */
export function servedServices(product: readonly DescService[]): string[] {
  return [...product, ...VENDORED].map((s) => s.typeName);
}

/**
 * Who may call each served RPC: the product's RPCs declare it in the contract; the vendored health and
 * reflection protos stay as published, so theirs is declared here.
 */
export function servedAccess(product: readonly DescService[]): AccessTable {
  return readAccessTable(product, [
    { service: Health, requirement: HEALTH_REQUIREMENT },
    { service: ServerReflection, requirement: { scope: "system:read" } },
    { service: ServerReflectionV1alpha, requirement: { scope: "system:read" } },
  ]);
}

export interface RoutesDeps {
  /** Every module's services with their implementations. */
  readonly services: readonly ServiceBinding[];
  /** The backends (by health name) each product service needs to serve, for per-service gRPC health. */
  readonly needs: ReadonlyMap<string, readonly string[]>;
  readonly monitor: HealthMonitor;
}

/** The modules' binary twins (see ServiceBinding.binary), served to protobuf binary requests. */
export function binaryMethods(services: readonly ServiceBinding[]): BinaryMethod[] {
  return services.flatMap(({ binary }) => binary ?? []);
}

/** Registers every service on the router: a pure function of its dependencies. */
export function createRoutes(deps: RoutesDeps): (router: ConnectRouter) => void {
  const product = deps.services.map((s) => s.desc);
  const reflection = createReflectionIndex([...new Set(product.map((s) => s.file)), ...VENDORED_FILES], servedServices(product));
  return (router) => {
    for (const { desc, impl } of deps.services) router.service(desc, impl);
    registerHealth(router, deps.monitor, deps.needs);
    registerReflection(router, reflection);
  };
}
