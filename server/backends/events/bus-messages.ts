import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { failedPrecondition, invalidArgument } from "../../core/errors.js";
import type { Logger } from "../../core/logger.js";
import type { BusEvent, EventPayload } from "./event-bus.js";

const TOPIC = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

/** Refuses a topic that is not dot-separated words (so it maps onto a NATS subject as it is). */
export function checkTopic(topic: string): string {
  if (typeof topic !== "string" || topic.length > 128 || !TOPIC.test(topic)) {
    throw invalidArgument([{ field: "topic", description: "must be dot-separated words of letters, digits, _ and -, at most 128 characters" }]);
  }
  return topic;
}

/** Bytes as they are; anything else as JSON text. */
export function encodePayload(payload: EventPayload): Uint8Array {
  if (payload instanceof Uint8Array) return payload;
  const json = JSON.stringify(payload);
  if (json === undefined) throw invalidArgument([{ field: "payload", description: "must be bytes or a JSON value" }]);
  return new TextEncoder().encode(json);
}

export function busEvent(topic: string, from: string, data: Uint8Array): BusEvent {
  return {
    topic,
    from,
    data,
    json: <T>() => JSON.parse(new TextDecoder().decode(data)) as T,
  };
}

/** Runs a subscriber; its failure (thrown or rejected) is logged, never passed to the bus. */
export function deliver(handler: (event: BusEvent) => void | Promise<void>, event: BusEvent, logger: Logger | undefined): void {
  const failed = (err: unknown) => logger?.warn({ err, topic: event.topic }, "event handler failed");
  try {
    const result = handler(event);
    if (result instanceof Promise) result.catch(failed);
  } catch (err) {
    failed(err);
  }
}

/** A responder's failure as one line (it travels in a NATS header, which cannot hold line breaks). */
export function errorText(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).replace(/\s*[\r\n]+\s*/g, " ");
}

/** Waits at most `ms` for `promise`; rejects with `onTimeout()` after that. */
export function within<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Host, process id and a random suffix: unique per process run. */
export function defaultInstanceId(): string {
  return `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;
}

/** A second responder for one topic on one instance. */
export function oneResponder(topic: string) {
  return failedPrecondition(`this instance already answers "${topic}"`, { type: "EVENTS_RESPONDER", subject: topic, description: "one responder per topic per instance" });
}

/** A gather bound must be a positive number of milliseconds. */
export function checkTimeout(timeoutMs: number): number {
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw invalidArgument([{ field: "timeout_ms", description: "must be a positive number" }]);
  return timeoutMs;
}
