import { ConnectError, type Interceptor } from "@connectrpc/connect";
import { internal } from "../../core/errors.js";
import type { Logger } from "../../core/logger.js";
import { loggerKey, requestIdKey } from "../context.js";
import { observeCall } from "./observe-call.js";

/**
 * The boundary where errors become what callers see. ConnectErrors (made by the errors module, or
 * by Connect itself for malformed input, deadlines and cancellation) pass unchanged; anything else
 * is logged with its stack and replaced by INTERNAL carrying only the request id.
 */
export function createErrorMappingInterceptor(fallbackLogger: Logger): Interceptor {
  return (next) => (req) =>
    observeCall(next, req, {
      mapError(err) {
        if (err instanceof ConnectError) return err;
        const requestId = req.contextValues.get(requestIdKey);
        const logger = req.contextValues.get(loggerKey) ?? fallbackLogger;
        logger.error({ err, request_id: requestId }, "unexpected error");
        return internal(requestId);
      },
    });
}
