import type { ConnectRouter } from "@connectrpc/connect";
import type { DescFile } from "@bufbuild/protobuf";
import { file_grpc_health_v1_health, Health } from "../../gen/grpc/health/v1/health_pb.js";
import { file_grpc_reflection_v1_reflection, ServerReflection } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import {
  file_grpc_reflection_v1alpha_reflection,
  ServerReflection as ServerReflectionV1alpha,
} from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { file_persistence_v1_system, SystemService } from "../../gen/persistence/v1/system_pb.js";
import { file_persistence_v1_translation, TranslationService } from "../../gen/persistence/v1/translation_pb.js";
import type { HealthMonitor } from "../core/health-monitor.js";
import { createSystemHandler } from "../system/system.handler.js";
import type { SystemService as System } from "../system/system.service.js";
import type { Durability } from "../core/write-batcher.js";
import { createTranslationHandler } from "../translation/translation.handler.js";
import type { TranslationReads } from "../translation/translation.reads.js";
import type { TranslationService as Translation } from "../translation/translation.service.js";
import { readAccessTable, type AccessTable } from "../security/access.js";
import { HEALTH_REQUIREMENT } from "../security/scopes.js";
import { registerHealth } from "./health.js";
import { createReflectionIndex, registerReflection } from "./reflection.js";

/** The product's own services, whose health is reported per service, with the backends each needs to serve. */
export const PRODUCT_SERVICES: ReadonlyMap<string, readonly string[]> = new Map([
  [TranslationService.typeName, ["sql"]],
  [SystemService.typeName, []],
]);

/** Every service the listener serves, as reflection lists them. */
export const SERVED_SERVICES = [
  ...PRODUCT_SERVICES.keys(),
  Health.typeName,
  ServerReflection.typeName,
  ServerReflectionV1alpha.typeName,
] as const;

/**
 * Who may call each served RPC: the product's RPCs declare it in the contract; the vendored health and
 * reflection protos stay as published, so theirs is declared here.
 */
export function servedAccess(): AccessTable {
  return readAccessTable([TranslationService, SystemService], [
    { service: Health, requirement: HEALTH_REQUIREMENT },
    { service: ServerReflection, requirement: { scope: "system:read" } },
    { service: ServerReflectionV1alpha, requirement: { scope: "system:read" } },
  ]);
}

const DESCRIPTOR_FILES: readonly DescFile[] = [
  file_persistence_v1_translation,
  file_persistence_v1_system,
  file_grpc_health_v1_health,
  file_grpc_reflection_v1_reflection,
  file_grpc_reflection_v1alpha_reflection,
];

export interface RoutesDeps {
  readonly system: System;
  readonly translation: Translation;
  readonly translationReads: TranslationReads;
  /** Durability of writes that do not ask for one. */
  readonly defaultDurability: Durability;
  readonly monitor: HealthMonitor;
}

/** Registers every service on the router: a pure function of its dependencies. */
export function createRoutes(deps: RoutesDeps): (router: ConnectRouter) => void {
  const reflection = createReflectionIndex(DESCRIPTOR_FILES, SERVED_SERVICES);
  return (router) => {
    router.service(TranslationService, createTranslationHandler(deps.translation, deps.translationReads, deps.defaultDurability));
    router.service(SystemService, createSystemHandler(deps.system));
    registerHealth(router, deps.monitor, PRODUCT_SERVICES);
    registerReflection(router, reflection);
  };
}
