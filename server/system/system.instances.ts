import { Gauge, type Registry } from "prom-client";
import type { EventBus, GatherResult, InstanceInfo } from "../backends/events/event-bus.js";

/** Asks every instance for its buffer; each answers with `{ buffered }`. */
export const INSTANCE_TOPIC = "system.instance";
/** How long GetInfo waits for the other instances to say what they hold. */
const ANSWER_TIMEOUT_MS = 500;

/** One live instance as GetInfo shows it. */
export interface InstanceView {
  readonly id: string;
  /** ms since the epoch, its own clock. */
  readonly startedAt: number;
  /** ms since the epoch, this instance's clock. */
  readonly lastSeenAt: number;
  /** Records accepted and not yet committed, over all its write paths; -1 when it did not answer in time. */
  readonly bufferedRecords: number;
}

export interface InstanceDirectory {
  /** The live instances behind the same events bus, this one first. */
  list(): Promise<InstanceView[]>;
  stop(): Promise<void>;
}

/**
 * The instances that serve together, as the events role knows them: answers the other instances'
 * questions about this one's buffer, and exports `persistence_instance_info{instance}` (always 1) and
 * `persistence_instances_live` (the live instances this one knows, itself included).
 */
export async function startInstanceDirectory(bus: EventBus, buffered: () => number, registry: Registry, startedAt: number): Promise<InstanceDirectory> {
  const stopResponder = await bus.respond(INSTANCE_TOPIC, () => ({ buffered: buffered() }));
  new Gauge({
    name: "persistence_instance_info",
    help: "This instance's identity on the events bus (as GetInfo shows it): always 1.",
    labelNames: ["instance"],
    registers: [registry],
  }).set({ instance: bus.instanceId }, 1);
  new Gauge({
    name: "persistence_instances_live",
    help: "Instances this one knows to be live on the events bus, itself included.",
    registers: [registry],
    async collect() {
      this.set((await bus.instances().catch(() => [])).length || 1);
    },
  });
  return {
    async list() {
      let live: InstanceInfo[];
      let replies: GatherResult["replies"];
      try {
        [live, { replies }] = await Promise.all([bus.instances(), bus.gather(INSTANCE_TOPIC, {}, ANSWER_TIMEOUT_MS)]);
      } catch {
        // The bus is unreachable: this instance is the one it can vouch for.
        const now = Date.now();
        return [{ id: bus.instanceId, startedAt, lastSeenAt: now, bufferedRecords: buffered() }];
      }
      const answers = new Map(replies.flatMap((r) => ("answer" in r ? [[r.instance, r.answer.json<{ buffered: number }>().buffered] as const] : [])));
      return live.map((i) => ({ id: i.id, startedAt: i.startedAt, lastSeenAt: i.lastSeenAt, bufferedRecords: answers.get(i.id) ?? -1 }));
    },
    stop: stopResponder,
  };
}
