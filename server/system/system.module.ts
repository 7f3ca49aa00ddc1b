import { SystemService } from "../../gen/persistence/v1/system_pb.js";
import { defineModule, implement } from "../platform/module.js";
import { createSystemHandler } from "./system.handler.js";
import { startInstanceDirectory } from "./system.instances.js";
import { registerSystemMetrics } from "./system.metrics.js";
import { createSystemService } from "./system.service.js";

/**
 * The service's view of itself: health, figures, configuration, identity (and the other live instances,
 * through the events role), and the Echo probe. Its service needs no backend.
 */
export const systemModule = defineModule({
  name: "system",
  services: [{ desc: SystemService, needs: [] }],
  needs: ["events"],
  async start(ctx) {
    const { platform } = ctx;
    const bufferedRecords = () => platform.writePaths().reduce((sum, p) => sum + p.batcher.status().bufferRecords, 0);
    const directory = await startInstanceDirectory(ctx.backends.events, bufferedRecords, ctx.registry, platform.startedAt);
    registerSystemMetrics(ctx.registry, platform.monitor, platform.version);
    const system = createSystemService({
      config: () => platform.redactedConfig(),
      bufferLimits: { maxRecords: ctx.config.limits.bufferMaxRecords, maxBytes: ctx.config.limits.bufferMaxBytes },
      version: platform.version,
      startedAt: platform.startedAt,
      monitor: platform.monitor,
      backends: () => platform.backends(),
      rpcMetrics: platform.rpcMetrics,
      registry: ctx.registry,
      services: () => platform.services(),
      writePaths: () => platform.writePaths().map((p) => p.batcher.status()),
      bufferedByTable: () => platform.writePaths()[0]?.batcher.pendingByTable() ?? {},
      retryDeadLetters: platform.retryDeadLetters,
    });
    return {
      services: [implement(SystemService, createSystemHandler(system, directory, ctx.backends.events.instanceId))],
      exports: undefined,
      stop: () => directory.stop(),
    };
  },
});
