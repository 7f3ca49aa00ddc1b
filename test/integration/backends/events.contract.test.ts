import { randomBytes } from "node:crypto";
import { Code } from "@connectrpc/connect";
import type { BusEvent, EventBus } from "../../../server/backends/events/event-bus";
import { createEventHub, createMemoryEventBus } from "../../../server/backends/events/memory";
import { openNatsEventBus, parseNatsUrl } from "../../../server/backends/events/nats";
import { openEventBus } from "../../../server/backends/events/open-event-bus";
import { describeEachBackend, type BackendCase } from "../../support/backends";
import { errorOf } from "../../support/errors";
import { freePort } from "../../support/private-mariadb";
import { createTcpProxy } from "../../support/tcp-proxy";

const NATS_URL = process.env.TEST_NATS_URL ?? "nats://127.0.0.1:4222";
const NATS_PORT = Number(new URL(NATS_URL.split(",")[0]!).port || 4222);

/** Two buses of one deployment, as two service instances open them, and a way to start a third. */
interface Cluster {
  readonly a: EventBus;
  readonly b: EventBus;
  another(): Promise<EventBus>;
  close(): Promise<void>;
}

function cluster(open: () => Promise<EventBus>): Promise<Cluster> {
  const opened: EventBus[] = [];
  const another = async () => {
    const bus = await open();
    opened.push(bus);
    return bus;
  };
  return Promise.all([another(), another()]).then(([a, b]) => ({
    a,
    b,
    another,
    close: async () => {
      for (const bus of opened) await bus.close();
    },
  }));
}

const natsPrefix = () => `persistence_test_${randomBytes(4).toString("hex")}`;

const CASES: BackendCase<Cluster>[] = [
  {
    name: "memory",
    open: () => {
      const hub = createEventHub();
      return cluster(async () => createMemoryEventBus({ hub }));
    },
    close: (c) => c.close(),
  },
  {
    name: "nats",
    open: () => {
      const prefix = natsPrefix();
      return cluster(() => openNatsEventBus(NATS_URL, { prefix, heartbeatMs: 200 }));
    },
    close: (c) => c.close(),
  },
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const topicOf = (name: string) => `${name}.${randomBytes(4).toString("hex")}`;

async function eventually(check: () => boolean | Promise<boolean>, what: string, boundMs = 15_000): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`still not true after ${boundMs} ms: ${what}`);
    await sleep(20);
  }
}

async function collect(bus: EventBus, topic: string): Promise<{ events: BusEvent[]; stop: () => Promise<void> }> {
  const events: BusEvent[] = [];
  const stop = await bus.subscribe(topic, (e) => {
    events.push(e);
  });
  return { events, stop };
}

describeEachBackend("events", CASES, (buses) => {
  const a = () => buses().a;
  const b = () => buses().b;

  describe("broadcast", () => {
    it("delivers an event to every subscribed instance, the publisher's own subscribers included", async () => {
      const topic = topicOf("broadcast");
      const atA = await collect(a(), topic);
      const atB = await collect(b(), topic);
      const atB2 = await collect(b(), topic);
      await a().publish(topic, { user: "u1", action: "invalidate" });
      await eventually(() => atA.events.length === 1 && atB.events.length === 1 && atB2.events.length === 1, "every subscriber has the event");
      for (const e of [...atA.events, ...atB.events]) {
        expect(e.json()).toEqual({ user: "u1", action: "invalidate" });
        expect(e.from).toBe(a().instanceId);
        expect(e.topic).toBe(topic);
      }
    });

    it("carries bytes as they are and other values as JSON", async () => {
      const topic = topicOf("payloads");
      const atB = await collect(b(), topic);
      const bytes = Uint8Array.from([0, 255, 10, 13, 128, 1]);
      await a().publish(topic, bytes);
      await a().publish(topic, "text");
      await a().publish(topic, 42);
      await a().publish(topic, null);
      await eventually(() => atB.events.length === 4, "four events");
      expect([...atB.events[0]!.data]).toEqual([...bytes]);
      expect(atB.events.slice(1).map((e) => e.json())).toEqual(["text", 42, null]);
    });

    it("keeps one publisher's events in order", async () => {
      const topic = topicOf("ordered");
      const atB = await collect(b(), topic);
      await Promise.all(Array.from({ length: 200 }, (_, i) => a().publish(topic, i)));
      await eventually(() => atB.events.length === 200, "all 200 events");
      expect(atB.events.map((e) => e.json())).toEqual(Array.from({ length: 200 }, (_, i) => i));
    });

    it("delivers nothing of other topics, and nothing after unsubscribe while other subscriptions go on", async () => {
      const topic = topicOf("unsub");
      const leaving = await collect(b(), topic);
      const staying = await collect(b(), topic);
      const elsewhere = await collect(b(), `${topic}.deeper`);
      await a().publish(topic, "before");
      await eventually(() => leaving.events.length === 1 && staying.events.length === 1, "both have the first event");
      await leaving.stop();
      await leaving.stop();
      await a().publish(topic, "after");
      await eventually(() => staying.events.length === 2, "the staying subscription has the second event");
      expect(leaving.events.map((e) => e.json())).toEqual(["before"]);
      expect(elsewhere.events).toEqual([]);
    });

    it("keeps delivering after a handler throws or rejects", async () => {
      const topic = topicOf("failing");
      const seen: unknown[] = [];
      await b().subscribe(topic, (e) => {
        seen.push(e.json());
        if (seen.length === 1) throw new Error("handler bug");
        if (seen.length === 2) return Promise.reject(new Error("async handler bug"));
      });
      for (const n of [1, 2, 3]) await a().publish(topic, n);
      await eventually(() => seen.length === 3, "the third event arrives");
    });
  });

  describe("gather", () => {
    it("collects one answer from every instance with a responder, this one included, and returns without waiting out the bound", async () => {
      const topic = topicOf("flush");
      const stops = [
        await a().respond(topic, (req) => ({ flushed: "a", asked: req.json(), by: req.from })),
        await b().respond(topic, async () => ({ flushed: "b" })),
      ];
      const started = Date.now();
      const result = await a().gather(topic, { scope: "cluster" }, 60_000);
      expect(Date.now() - started).toBeLessThan(60_000);
      expect(result.missing).toEqual([]);
      const answers = Object.fromEntries(result.replies.map((r) => [r.instance, "answer" in r ? r.answer.json() : r.error]));
      expect(answers).toEqual({
        [a().instanceId]: { flushed: "a", asked: { scope: "cluster" }, by: a().instanceId },
        [b().instanceId]: { flushed: "b" },
      });
      for (const stop of stops) await stop();
    });

    it("returns at the bound with an instance whose responder did not answer listed as missing", async () => {
      const topic = topicOf("slow");
      let release: () => void = () => {};
      const stops = [await a().respond(topic, () => "quick"), await b().respond(topic, () => new Promise<string>((r) => (release = () => r("late"))))];
      const result = await a().gather(topic, {}, 2000);
      expect(result.replies.map((r) => r.instance)).toEqual([a().instanceId]);
      expect(result.missing).toEqual([b().instanceId]);
      release();
      for (const stop of stops) await stop();
    });

    it("reports a responder's failure as that instance's error, and leaves instances without a responder out", async () => {
      const topic = topicOf("failing");
      const stop = await b().respond(topic, () => {
        throw new Error("disk full\nsecond line");
      });
      const result = await a().gather(topic, 1, 10_000);
      expect(result.replies).toEqual([{ instance: b().instanceId, error: "disk full second line" }]);
      expect(result.missing).toEqual([]);
      await stop();
      expect(await a().gather(topic, 1, 10_000)).toEqual({ replies: [], missing: [] });
    });

    it("allows one responder per topic per instance, and another once it is removed", async () => {
      const topic = topicOf("one");
      const stop = await a().respond(topic, () => 1);
      expect((await errorOf(a().respond(topic, () => 2))).code).toBe(Code.FailedPrecondition);
      await stop();
      const again = await a().respond(topic, () => 3);
      const result = await b().gather(topic, null, 10_000);
      expect(result.replies.map((r) => ("answer" in r ? r.answer.json() : r.error))).toEqual([3]);
      await again();
    });
  });

  describe("instances", () => {
    it("lists every live instance, this one first, and forgets one that closed", async () => {
      const c = await buses().another();
      await eventually(async () => (await a().instances()).some((i) => i.id === c.instanceId), "a learns of c");
      await eventually(async () => (await c.instances()).length === 3, "c learns of a and b");
      const seen = await c.instances();
      expect(seen[0]!.id).toBe(c.instanceId);
      expect(new Set(seen.map((i) => i.id))).toEqual(new Set([a().instanceId, b().instanceId, c.instanceId]));
      for (const i of seen) expect(i.lastSeenAt).toBeGreaterThanOrEqual(i.startedAt);
      await c.close();
      await eventually(async () => !(await a().instances()).some((i) => i.id === c.instanceId), "a forgets c");
      expect((await errorOf(c.publish(topicOf("closed"), 1))).code).toBe(Code.Unavailable);
    });

    it("makes gather wait for an instance that joined, once it is known", async () => {
      const topic = topicOf("joined");
      const c = await buses().another();
      await c.respond(topic, () => "c");
      await eventually(async () => (await a().instances()).some((i) => i.id === c.instanceId), "a learns of c");
      const result = await a().gather(topic, {}, 60_000);
      expect(result.replies.map((r) => r.instance)).toEqual([c.instanceId]);
      await c.close();
    });
  });

  it("refuses topics that are not dot-separated words (INVALID_ARGUMENT) and answers a ping", async () => {
    for (const bad of ["", "a..b", "a.*", "a b", ">", "x".repeat(129)]) {
      expect((await errorOf(a().publish(bad, 1))).code).toBe(Code.InvalidArgument);
      expect((await errorOf(a().subscribe(bad, () => {}))).code).toBe(Code.InvalidArgument);
    }
    expect((await errorOf(a().gather("ok", 1, 0))).code).toBe(Code.InvalidArgument);
    expect((await errorOf(a().publish("ok", () => 1))).code).toBe(Code.InvalidArgument);
    expect(a().name).toBe("events");
    await a().ping();
  });
});

describe("NATS event bus when its connection drops", () => {
  it("reconnects, tells its gap listeners, and receives again on the same subscriptions", async () => {
    const proxy = await createTcpProxy(NATS_PORT);
    const prefix = natsPrefix();
    const direct = await openNatsEventBus(NATS_URL, { prefix, heartbeatMs: 200 });
    const proxied = await openNatsEventBus(`nats://127.0.0.1:${proxy.port}`, { prefix, heartbeatMs: 200 });
    try {
      const topic = topicOf("reconnect");
      const received = await collect(proxied, topic);
      let gaps = 0;
      const removeListener = proxied.onGap(() => gaps++);
      proxy.dropConnections();
      await eventually(() => gaps >= 1, "the gap is reported");
      await eventually(async () => {
        await direct.publish(topic, "after the drop");
        return received.events.length > 0;
      }, "events arrive again after reconnecting");
      expect(received.events[0]!.json()).toBe("after the drop");
      removeListener();
    } finally {
      await proxied.close();
      await direct.close();
      await proxy.close();
    }
  });

  it("answers UNAVAILABLE while the server is gone, drops out of the other instances' list, and comes back", async () => {
    const proxy = await createTcpProxy(NATS_PORT);
    const prefix = natsPrefix();
    const direct = await openNatsEventBus(NATS_URL, { prefix, heartbeatMs: 200 });
    const proxied = await openNatsEventBus(`nats://127.0.0.1:${proxy.port}`, { prefix, heartbeatMs: 200, timeoutMs: 1000 });
    try {
      await eventually(async () => (await direct.instances()).some((i) => i.id === proxied.instanceId), "the proxied instance is known");
      proxy.refuse(true);
      proxy.dropConnections();
      expect((await errorOf(proxied.publish("gone", 1))).code).toBe(Code.Unavailable);
      expect((await errorOf(proxied.ping())).code).toBe(Code.Unavailable);
      await eventually(async () => !(await direct.instances()).some((i) => i.id === proxied.instanceId), "the silent instance leaves the list");
      proxy.refuse(false);
      await eventually(async () => (await direct.instances()).some((i) => i.id === proxied.instanceId), "it is back after reconnecting");
      await proxied.ping();
    } finally {
      await proxied.close();
      await direct.close();
      await proxy.close();
    }
  });

  it("fails to open, with UNAVAILABLE, when no server answers", async () => {
    const port = await freePort();
    expect((await errorOf(openNatsEventBus(`nats://127.0.0.1:${port}`, { timeoutMs: 500 }))).code).toBe(Code.Unavailable);
  });
});

describe("NATS event bus payloads", () => {
  it("refuses a payload larger than the server takes (INVALID_ARGUMENT) instead of losing the connection", async () => {
    const bus = await openNatsEventBus(NATS_URL, { prefix: natsPrefix() });
    try {
      expect((await errorOf(bus.publish("big", new Uint8Array(2 * 1024 * 1024)))).code).toBe(Code.InvalidArgument);
      await bus.publish("fine", new Uint8Array(512 * 1024));
    } finally {
      await bus.close();
    }
  });
});

describe("openEventBus", () => {
  it("chooses the in-process bus without a URL and NATS for nats://, and refuses other schemes", async () => {
    const memory = await openEventBus();
    expect(memory.kind).toBe("memory");
    await memory.close();
    const nats = await openEventBus({ url: NATS_URL, prefix: natsPrefix(), instanceId: "chosen-one" });
    expect([nats.kind, nats.instanceId]).toEqual(["nats", "chosen-one"]);
    await nats.close();
    expect((await errorOf(openEventBus({ url: "redis://127.0.0.1:6379" }))).code).toBe(Code.InvalidArgument);
  });

  it("reads nats:// and tls:// URLs with credentials and several servers", () => {
    expect(parseNatsUrl("nats://127.0.0.1:4222")).toEqual({ servers: ["127.0.0.1:4222"], tls: false });
    expect(parseNatsUrl("nats://alice:p%40ss@a:4222,b:4223,[::1]:4224")).toEqual({
      servers: ["a:4222", "b:4223", "[::1]:4224"],
      user: "alice",
      pass: "p@ss",
      tls: false,
    });
    expect(parseNatsUrl("tls://s3cr3t@host")).toEqual({ servers: ["host"], token: "s3cr3t", tls: true });
    for (const bad of ["redis://h:1", "nats://", "nats://a:b:c", "nonsense"]) expect(() => parseNatsUrl(bad)).toThrow();
  });
});
