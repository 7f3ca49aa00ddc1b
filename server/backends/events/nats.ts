import { connect, createInbox, Events, headers, type Msg, type NatsConnection } from "nats";
import { invalidArgument, unavailable } from "../../core/errors.js";
import type { Logger } from "../../core/logger.js";
import { busEvent, checkTimeout, checkTopic, defaultInstanceId, deliver, encodePayload, errorText, oneResponder, within } from "./bus-messages.js";
import type { BusEvent, EventBus, EventPayload, InstanceInfo } from "./event-bus.js";
import { createGatherCollector, type Answer } from "./gather-collector.js";

export interface NatsEventBusOptions {
  /** First subject token(s) of every subject the bus uses, so deployments sharing a server stay apart (default "persistence"). */
  readonly prefix?: string;
  /** Default: host, process id and a random suffix. */
  readonly instanceId?: string;
  /** How often this instance says it is alive, in ms (default 1000). */
  readonly heartbeatMs?: number;
  /** How long an instance counts as live after its last heartbeat, in ms (default 5 heartbeats). */
  readonly livenessMs?: number;
  /** Bound on connecting, on a publish or subscribe reaching the server, and on a ping, in ms (default 2000). */
  readonly timeoutMs?: number;
  /** Where failing handlers and reconnections are reported (default: nowhere). */
  readonly logger?: Logger;
}

/** Where the NATS servers are, from `nats://[user:pass@|token@]host:port[,host:port...]` (`tls://` for TLS). */
export interface NatsTarget {
  readonly servers: readonly string[];
  readonly user?: string;
  readonly pass?: string;
  readonly token?: string;
  readonly tls: boolean;
}

export function parseNatsUrl(url: string): NatsTarget {
  const match = /^(nats|tls):\/\/(?:([^@/]*)@)?([^/?#]+)\/?$/.exec(url);
  if (!match) throw invalidArgument([{ field: "events_url", description: "must be nats://[user:pass@]host:port[,host:port...] (or tls://...)" }]);
  const [, scheme, auth, hosts] = match;
  const servers = (hosts ?? "").split(",").map((h) => h.trim());
  if (servers.some((h) => !/^(\[[0-9a-f:.]+\]|[^:\s]+)(:\d+)?$/i.test(h))) {
    throw invalidArgument([{ field: "events_url", description: "lists a server that is not host[:port]" }]);
  }
  const [user, ...pass] = (auth ?? "").split(":");
  const credentials = !user
    ? {}
    : pass.length === 0
      ? { token: decodeURIComponent(user) }
      : { user: decodeURIComponent(user), pass: decodeURIComponent(pass.join(":")) };
  return { servers, ...credentials, tls: scheme === "tls" };
}

/** Heartbeats on `<prefix>.instances`: a joining instance says hello, and everyone answers with a beat. */
type Heartbeat = { readonly id: string; readonly startedAt: number; readonly kind: "hello" | "beat" | "bye" };

/**
 * The cross-instance bus over core NATS (`PERSISTENCE_EVENTS_URL=nats://...`). Events go to
 * `<prefix>.event.<topic>`; gather requests to `<prefix>.gather`, which every instance answers on the
 * request's reply inbox (with its responder's answer, or "no responder"); liveness to
 * `<prefix>.instances`. The client reconnects by itself (forever, every ~250 ms) and resubscribes;
 * what was published meanwhile is lost, so `onGap` listeners are told. Fails to open (UNAVAILABLE) when
 * no server answers within the timeout.
 */
export async function openNatsEventBus(url: string, options: NatsEventBusOptions = {}): Promise<EventBus> {
  const target = parseNatsUrl(url);
  const prefix = options.prefix ?? "persistence";
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(prefix)) throw invalidArgument([{ field: "prefix", description: "must be a NATS subject prefix" }]);
  const instanceId = options.instanceId ?? defaultInstanceId();
  const heartbeatMs = options.heartbeatMs ?? 1000;
  const livenessMs = options.livenessMs ?? 5 * heartbeatMs;
  const timeoutMs = options.timeoutMs ?? 2000;
  const logger = options.logger;
  const subject = { event: (topic: string) => `${prefix}.event.${topic}`, gather: `${prefix}.gather`, instances: `${prefix}.instances` };

  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: [...target.servers],
      ...(target.user !== undefined ? { user: target.user, pass: target.pass ?? "" } : {}),
      ...(target.token !== undefined ? { token: target.token } : {}),
      ...(target.tls ? { tls: {} } : {}),
      name: `persistence ${instanceId}`,
      timeout: timeoutMs,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      // A silently dead connection is noticed within ~10 s (two unanswered pings).
      pingInterval: 5000,
      maxPingOut: 2,
    });
  } catch (err) {
    throw unavailable(`event bus unreachable at ${target.servers.join(",")}: ${(err as Error).message}`, 1000);
  }

  const startedAt = Date.now();
  const peers = new Map<string, { startedAt: number; lastSeenAt: number }>();
  const responders = new Map<string, (request: BusEvent) => EventPayload | Promise<EventPayload>>();
  const gapListeners = new Set<() => void>();
  let closing = false;

  const unreachable = (what: string) => () => unavailable(`event bus unreachable: ${what} got no answer from NATS within ${timeoutMs} ms`, 1000);
  const ensureOpen = () => {
    if (closing || nc.isClosed()) throw unavailable("the event bus is closed", 1000);
  };
  /** Resolves once the server has everything sent so far. */
  const flushed = (what: string) => {
    ensureOpen();
    const flush = nc.flush().catch((err: unknown) => {
      throw unavailable(`event bus unreachable: ${what} failed: ${(err as Error).message}`, 1000);
    });
    return within(flush, timeoutMs, unreachable(what));
  };
  /** Refuses what the server would not take (its max_payload, 1 MiB by default), headers aside. */
  const fitting = (data: Uint8Array) => {
    const max = nc.info?.max_payload ?? 1024 * 1024;
    if (data.length > max - 1024) throw invalidArgument([{ field: "payload", description: `must be under ${max - 1024} bytes on this bus` }]);
    return data;
  };
  const from = (msg: Msg) => msg.headers?.get("from") ?? "";
  const announce = (kind: Heartbeat["kind"]) => {
    if (nc.isClosed()) return;
    nc.publish(subject.instances, encodePayload({ id: instanceId, startedAt, kind } satisfies Heartbeat));
  };

  nc.subscribe(subject.instances, {
    callback: (err, msg) => {
      if (err) return;
      let beat: Heartbeat;
      try {
        beat = busEvent(subject.instances, "", msg.data).json<Heartbeat>();
      } catch {
        return; // not one of ours
      }
      if (typeof beat?.id !== "string" || beat.id === instanceId) return;
      if (beat.kind === "bye") peers.delete(beat.id);
      else peers.set(beat.id, { startedAt: beat.startedAt, lastSeenAt: Date.now() });
      if (beat.kind === "hello") announce("beat");
    },
  });

  nc.subscribe(subject.gather, {
    callback: (err, msg) => {
      if (err || !msg.reply) return;
      const topic = msg.headers?.get("topic") ?? "";
      const reply = (status: "ok" | "error" | "none", data: Uint8Array, error = "") => {
        const h = headers();
        h.set("from", instanceId);
        h.set("status", status);
        if (error) h.set("error", error);
        if (!nc.isClosed()) msg.respond(data, { headers: h });
      };
      const responder = responders.get(topic);
      if (!responder) return reply("none", new Uint8Array());
      void (async () => {
        try {
          reply("ok", encodePayload(await responder(busEvent(topic, from(msg), msg.data))));
        } catch (e) {
          reply("error", new Uint8Array(), errorText(e));
        }
      })();
    },
  });

  const liveInstances = (): InstanceInfo[] => {
    const now = Date.now();
    const live = [...peers].filter(([, p]) => p.lastSeenAt >= now - livenessMs).map(([id, p]) => ({ id, ...p }));
    return [{ id: instanceId, startedAt, lastSeenAt: now }, ...live];
  };

  const heartbeat = setInterval(() => {
    announce("beat");
    const stale = Date.now() - livenessMs;
    for (const [id, peer] of peers) if (peer.lastSeenAt < stale) peers.delete(id);
  }, heartbeatMs);
  heartbeat.unref();

  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === Events.Disconnect) logger?.warn({ server: String(status.data) }, "event bus disconnected; reconnecting");
      if (status.type === Events.Reconnect) {
        logger?.info({ server: String(status.data) }, "event bus reconnected; events of the meantime are lost");
        announce("hello");
        for (const listener of gapListeners) listener();
      }
    }
  })();

  announce("hello");
  try {
    await flushed("joining");
  } catch (err) {
    clearInterval(heartbeat);
    await nc.close();
    throw err;
  }

  return {
    name: "events",
    kind: "nats",
    instanceId,
    ping: () => flushed("a ping"),
    async close() {
      if (closing) return;
      closing = true;
      clearInterval(heartbeat);
      announce("bye");
      await within(nc.drain(), timeoutMs, unreachable("closing")).catch(() => nc.close());
    },
    async publish(topic, payload) {
      ensureOpen();
      const h = headers();
      h.set("from", instanceId);
      const data = fitting(encodePayload(payload));
      nc.publish(subject.event(checkTopic(topic)), data, { headers: h });
      await flushed("a publish");
    },
    async subscribe(topic, handler) {
      ensureOpen();
      const sub = nc.subscribe(subject.event(checkTopic(topic)), {
        callback: (err, msg) => {
          if (!err) deliver(handler, busEvent(topic, from(msg), msg.data), logger);
        },
      });
      try {
        await flushed("a subscribe");
      } catch (err) {
        sub.unsubscribe();
        throw err;
      }
      return async () => {
        if (!sub.isClosed()) sub.unsubscribe();
      };
    },
    async respond(topic, handler) {
      ensureOpen();
      checkTopic(topic);
      if (responders.has(topic)) throw oneResponder(topic);
      responders.set(topic, handler);
      return async () => {
        if (responders.get(topic) === handler) responders.delete(topic);
      };
    },
    async gather(topic, payload, timeout) {
      ensureOpen();
      checkTopic(topic);
      checkTimeout(timeout);
      const data = fitting(encodePayload(payload));
      const expected = liveInstances().map((i) => i.id);
      // Just after joining, the peers' answers to this instance's hello may still be on their way.
      const collector = createGatherCollector(expected, timeout, startedAt + Math.min(heartbeatMs, timeout));
      const inbox = createInbox();
      const sub = nc.subscribe(inbox, {
        callback: (err, msg) => {
          if (err) return;
          const status = msg.headers?.get("status");
          const answer: Answer =
            status === "none"
              ? "no responder"
              : status === "error"
                ? { error: msg.headers?.get("error") ?? "failed" }
                : { answer: busEvent(topic, from(msg), msg.data) };
          collector.add(from(msg), answer);
        },
      });
      try {
        const h = headers();
        h.set("from", instanceId);
        h.set("topic", topic);
        nc.publish(subject.gather, data, { reply: inbox, headers: h });
        await flushed("a gather");
        return await collector.result;
      } finally {
        sub.unsubscribe();
      }
    },
    instances: async () => liveInstances(),
    onGap(listener) {
      gapListeners.add(listener);
      return () => gapListeners.delete(listener);
    },
  };
}
