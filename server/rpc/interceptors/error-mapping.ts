import { ConnectError, type Interceptor } from "@connectrpc/connect";
import { cancelled, internal } from "../../core/errors.js";
import type { Logger } from "../../core/logger.js";
import { loggerKey, requestIdKey } from "../context.js";
import { observeCall } from "./observe-call.js";

/**
 * The boundary where errors become what callers see. ConnectErrors (made by the errors module, or
 * by Connect itself for malformed input, deadlines and cancellation) pass unchanged. Anything else
 * thrown once the call was aborted is the abort's doing (Node's "Premature close" when the caller
 * drops a stream it was sending) and becomes CANCELLED or DEADLINE_EXCEEDED; anything else again is
 * logged with its stack and replaced by INTERNAL carrying only the request id.
 */
export function createErrorMappingInterceptor(fallbackLogger: Logger): Interceptor {
  return (next) => (req) =>
    observeCall(next, req, {
      mapError(err) {
        if (err instanceof ConnectError) return err;
        if (req.signal.aborted) return cancelled(req.signal.reason);
        const requestId = req.contextValues.get(requestIdKey);
        const logger = req.contextValues.get(loggerKey)?.() ?? fallbackLogger;
        logger.error({ err, request_id: requestId }, "unexpected error");
        return internal(requestId);
      },
    });
}
