import { invalidArgument, unavailable } from "../../core/errors.js";
import type { Logger } from "../../core/logger.js";
import { busEvent, checkTimeout, checkTopic, defaultInstanceId, deliver, encodePayload, errorText, oneResponder } from "./bus-messages.js";
import type { BusEvent, EventBus, EventPayload, InstanceInfo } from "./event-bus.js";
import { createGatherCollector, type Answer } from "./gather-collector.js";

/** The buses of one process that reach each other: every bus is a member until it closes. */
export interface EventHub {
  readonly members: Map<string, HubMember>;
}

interface HubMember {
  readonly startedAt: number;
  readonly subscribers: Map<string, Set<(event: BusEvent) => void>>;
  readonly responders: Map<string, (request: BusEvent) => EventPayload | Promise<EventPayload>>;
}

export function createEventHub(): EventHub {
  return { members: new Map() };
}

export interface MemoryEventBusOptions {
  /** The hub shared with the buses this one reaches (default: a hub of its own, i.e. one instance). */
  readonly hub?: EventHub;
  /** Default: host, process id and a random suffix. */
  readonly instanceId?: string;
  /** Where failing handlers are reported (default: nowhere). */
  readonly logger?: Logger;
}

/** The in-process bus, the default when no cross-instance bus is configured; nothing is ever missed. */
export function createMemoryEventBus(options: MemoryEventBusOptions = {}): EventBus {
  const hub = options.hub ?? createEventHub();
  const instanceId = options.instanceId ?? defaultInstanceId();
  if (hub.members.has(instanceId)) throw invalidArgument([{ field: "instance_id", description: "is already on this hub" }]);
  const self: HubMember = { startedAt: Date.now(), subscribers: new Map(), responders: new Map() };
  hub.members.set(instanceId, self);
  let closed = false;
  const open = () => {
    if (closed) throw unavailable("the event bus is closed", 1000);
  };

  return {
    name: "events",
    kind: "memory",
    instanceId,
    async ping() {
      open();
    },
    async close() {
      closed = true;
      hub.members.delete(instanceId);
    },
    async publish(topic, payload) {
      open();
      const event = busEvent(checkTopic(topic), instanceId, encodePayload(payload));
      // Delivered after publish returns, in publish order, as a network bus would.
      for (const member of hub.members.values()) {
        for (const subscriber of member.subscribers.get(topic) ?? []) queueMicrotask(() => subscriber(event));
      }
    },
    async subscribe(topic, handler) {
      open();
      checkTopic(topic);
      let active = true;
      const subscriber = (event: BusEvent) => {
        if (active) deliver(handler, event, options.logger);
      };
      const set = self.subscribers.get(topic) ?? new Set();
      self.subscribers.set(topic, set.add(subscriber));
      return async () => {
        active = false;
        set.delete(subscriber);
      };
    },
    async respond(topic, handler) {
      open();
      checkTopic(topic);
      if (self.responders.has(topic)) throw oneResponder(topic);
      self.responders.set(topic, handler);
      return async () => {
        if (self.responders.get(topic) === handler) self.responders.delete(topic);
      };
    },
    async gather(topic, payload, timeoutMs) {
      open();
      const request = busEvent(checkTopic(topic), instanceId, encodePayload(payload));
      const collector = createGatherCollector([...hub.members.keys()], checkTimeout(timeoutMs));
      for (const [id, member] of hub.members) {
        const responder = member.responders.get(topic);
        if (!responder) {
          collector.add(id, "no responder");
          continue;
        }
        void (async (): Promise<Answer> => {
          try {
            return { answer: busEvent(topic, id, encodePayload(await responder(request))) };
          } catch (err) {
            return { error: errorText(err) };
          }
        })().then((answer) => collector.add(id, answer));
      }
      return collector.result;
    },
    async instances(): Promise<InstanceInfo[]> {
      const now = Date.now();
      const list = [...hub.members].map(([id, m]) => ({ id, startedAt: m.startedAt, lastSeenAt: now }));
      return [...list.filter((i) => i.id === instanceId), ...list.filter((i) => i.id !== instanceId)];
    },
    onGap() {
      return () => {};
    },
  };
}
