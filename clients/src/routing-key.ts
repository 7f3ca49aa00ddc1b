import type { Interceptor } from "@connectrpc/connect";

/** The header a load balancer routes on (deploy/nginx hashes it), so that one session's calls reach one instance. */
export const ROUTING_KEY_HEADER = "x-routing-key";

/**
 * The session a request is about: its `sessionId`, or the first record's of a batch write (a batch of
 * several sessions goes where the first one goes). Undefined for calls about no one session.
 */
export function routingKeyOf(message: unknown): string | undefined {
  if (typeof message !== "object" || message === null) return undefined;
  const m = message as { sessionId?: unknown; sessions?: { sessionId?: unknown }[]; tasks?: { sessionId?: unknown }[] };
  const key = m.sessionId ?? m.sessions?.[0]?.sessionId ?? m.tasks?.[0]?.sessionId;
  return typeof key === "string" && key !== "" ? key : undefined;
}

/** Sends `x-routing-key: <session_id>` on session-scoped calls (unary and server streams) that do not carry one already. */
export const routingKeyInterceptor: Interceptor = (next) => async (req) => {
  if (req.header.has(ROUTING_KEY_HEADER)) return next(req);
  if (!req.stream) {
    const key = routingKeyOf(req.message);
    if (key) req.header.set(ROUTING_KEY_HEADER, key);
    return next(req);
  }
  // A server stream's one request message comes as an iterable: read it, then hand it on unchanged.
  if (req.method.methodKind !== "server_streaming") return next(req);
  const input = req.message[Symbol.asyncIterator]();
  const first = await input.next();
  const key = first.done ? undefined : routingKeyOf(first.value);
  if (key) req.header.set(ROUTING_KEY_HEADER, key);
  async function* replay() {
    if (!first.done) yield first.value;
    for (let r = await input.next(); !r.done; r = await input.next()) yield r.value;
  }
  return next({ ...req, message: replay() });
};
