import { invalidArgument } from "../../core/errors.js";
import type { Logger } from "../../core/logger.js";
import type { EventBus } from "./event-bus.js";
import { createMemoryEventBus } from "./memory.js";
import { openNatsEventBus } from "./nats.js";

export interface OpenEventBusOptions {
  /**
   * `PERSISTENCE_EVENTS_URL`: `nats://[user:pass@]host:port[,host:port...]` (or `tls://...`) for the bus
   * across instances; absent, the in-process bus (one instance).
   */
  readonly url?: string;
  /** NATS subject prefix (default "persistence"). */
  readonly prefix?: string;
  /** This instance's identity (default: host, process id and a random suffix). */
  readonly instanceId?: string;
  /** NATS heartbeat interval, in ms (default 1000). */
  readonly heartbeatMs?: number;
  /** Where failing handlers and reconnections are reported (default: nowhere). */
  readonly logger?: Logger;
}

/** The one place that chooses the events implementation. A configured NATS that cannot be reached fails start-up (UNAVAILABLE). */
export async function openEventBus(options: OpenEventBusOptions = {}): Promise<EventBus> {
  const common = {
    ...(options.instanceId !== undefined ? { instanceId: options.instanceId } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
  };
  if (options.url === undefined || options.url === "") return createMemoryEventBus(common);
  if (/^(nats|tls):\/\//.test(options.url)) {
    return openNatsEventBus(options.url, {
      ...common,
      ...(options.prefix !== undefined ? { prefix: options.prefix } : {}),
      ...(options.heartbeatMs !== undefined ? { heartbeatMs: options.heartbeatMs } : {}),
    });
  }
  throw invalidArgument([{ field: "events_url", description: "must be nats://host:port[,host:port...] (events do not go through Redis here)" }]);
}
