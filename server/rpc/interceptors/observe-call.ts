import type { Interceptor } from "@connectrpc/connect";
import { cancelled } from "../../core/errors.js";

type Next = Parameters<Interceptor>[0];
type Request = Parameters<Next>[0];
type Response = Awaited<ReturnType<Next>>;

export interface CallHooks {
  /** Turns whatever the call threw into what the caller sees; identity when absent. */
  mapError?(error: unknown): unknown;
  /** Called once when the call is over (for a server stream: when its last message is sent), with its error if any. */
  end?(error: unknown): void;
}

/**
 * Runs `next(req)` and reports its outcome once, for unary calls and for streams alike: a streamed
 * response only ends when its message iterator does, and its errors surface there, not from `next`.
 * A stream whose call was aborted (its caller cancelled or went away, its deadline passed) ends with
 * CANCELLED or DEADLINE_EXCEEDED, also when its handler simply returns on the abort.
 */
export async function observeCall(next: Next, req: Request, hooks: CallHooks): Promise<Response> {
  const mapError = hooks.mapError ?? ((e: unknown) => e);
  let res: Response;
  try {
    res = await next(req);
  } catch (err) {
    const mapped = mapError(err);
    hooks.end?.(mapped);
    throw mapped;
  }
  if (!res.stream) {
    hooks.end?.(undefined);
    return res;
  }
  const source = res.message;
  async function* observed() {
    let failure: unknown;
    let completed = false;
    try {
      yield* source;
      // The handler returned on the abort: the stream was cut short, and the caller (if still there) hears why.
      if (req.signal.aborted) throw cancelled(req.signal.reason);
      completed = true;
    } catch (err) {
      failure = mapError(err);
      throw failure;
    } finally {
      // Stopped early: Connect stops reading a stream once its caller has gone.
      if (failure === undefined && !completed) failure = cancelled(req.signal.reason);
      hooks.end?.(failure);
    }
  }
  return { ...res, message: observed() };
}
