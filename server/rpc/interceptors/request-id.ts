import { ConnectError, type Interceptor } from "@connectrpc/connect";
import { requestIdKey, requestIdOf } from "../context.js";

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
