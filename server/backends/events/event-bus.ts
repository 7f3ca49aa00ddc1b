import type { Backend } from "../backend.js";

/**
 * The `events` role: notifications between the service's instances. Events are signals about state
 * kept elsewhere (a cache entry to drop, a session that committed, a flush to run), not records:
 * delivery is at most once, to every instance subscribed at the time (the publisher's own
 * subscribers included), in publish order per publisher. When an instance may have missed events
 * (its connection dropped), its `onGap` listeners hear of it so they can re-read what they cache.
 *
 * Topics are dot-separated words of letters, digits, `_` and `-` ("users.invalidate"), at most 128
 * characters. Implementations: in-process (the default, one instance) and NATS (across instances).
 */
export interface EventBus extends Backend {
  readonly name: "events";
  /** This instance's identity on the bus, unique per process run. */
  readonly instanceId: string;

  /**
   * Sends `payload` (bytes as they are, anything else as JSON) to every subscriber of `topic` on every
   * instance. Resolves once the bus has it; rejects with UNAVAILABLE when the bus cannot be reached.
   */
  publish(topic: string, payload: EventPayload): Promise<void>;
  /**
   * Calls `handler` for every event on `topic` published after this resolves. A handler's failure is
   * logged and does not stop later deliveries. Resolves to the function that ends the subscription.
   */
  subscribe(topic: string, handler: (event: BusEvent) => void | Promise<void>): Promise<Unsubscribe>;
  /** Answers `gather` requests on `topic` from any instance (one responder per topic per instance). */
  respond(topic: string, handler: (request: BusEvent) => EventPayload | Promise<EventPayload>): Promise<Unsubscribe>;
  /**
   * Asks every live instance (this one included) and collects their answers for at most `timeoutMs`,
   * returning early once every instance known to be live has answered. What cluster-wide Flush uses.
   */
  gather(topic: string, payload: EventPayload, timeoutMs: number): Promise<GatherResult>;
  /** The instances known to be live (heartbeats within the liveness window), this one first. */
  instances(): Promise<InstanceInfo[]>;
  /** Calls `listener` whenever events may have been missed (after a reconnection); returns its remover. */
  onGap(listener: () => void): () => void;
}

/** Bytes, sent as they are, or a value sent as JSON. */
export type EventPayload = Uint8Array | string | number | boolean | null | object;

/** One delivered event (or gather request, or answer). */
export interface BusEvent {
  readonly topic: string;
  /** The instance that sent it. */
  readonly from: string;
  /** The payload's bytes (JSON text for a JSON payload). */
  readonly data: Uint8Array;
  /** The payload parsed as JSON. */
  json<T = unknown>(): T;
}

/** Ends a subscription (or a responder); safe to call more than once. */
export type Unsubscribe = () => Promise<void>;

/** Instances that have no responder for the topic say so at once: they are in neither list. */
export interface GatherResult {
  /** One per instance whose responder answered in time: its answer, or the error it failed with. */
  readonly replies: readonly GatherReply[];
  /** Instances known to be live that did not answer in time. */
  readonly missing: readonly string[];
}

export type GatherReply = { readonly instance: string } & ({ readonly answer: BusEvent } | { readonly error: string });

export interface InstanceInfo {
  readonly id: string;
  /** When the instance joined the bus (ms since the epoch, its own clock). */
  readonly startedAt: number;
  /** When this instance last heard from it (ms since the epoch, this instance's clock). */
  readonly lastSeenAt: number;
}
