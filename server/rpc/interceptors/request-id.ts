import { randomUUID } from "node:crypto";
import { ConnectError, type Interceptor } from "@connectrpc/connect";
import { requestIdKey } from "../context.js";

const WELL_FORMED = /^[A-Za-z0-9._:\-]{1,128}$/;

/** The caller's request id when it is well formed, a new UUID otherwise. */
export function requestIdOf(given: string | null | undefined): string {
  return given && WELL_FORMED.test(given) ? given : randomUUID();
}

/** Accepts the caller's `x-request-id` (or makes one), puts it in the call context, and echoes it on every reply and error. */
export function createRequestIdInterceptor(): Interceptor {
  return (next) => async (req) => {
    const id = requestIdOf(req.header.get("x-request-id"));
    req.contextValues.set(requestIdKey, id);
    try {
      const res = await next(req);
      res.header.set("x-request-id", id);
      return res;
    } catch (err) {
      const error = ConnectError.from(err);
      error.metadata.set("x-request-id", id);
      throw error;
    }
  };
}
