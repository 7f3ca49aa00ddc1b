import { createContextKey } from "@connectrpc/connect";
import type { Logger } from "../core/logger.js";

/** The id of the current call: the caller's `x-request-id` when it is well formed, a new UUID otherwise. */
export const requestIdKey = createContextKey<string>("", { description: "request id" });

/** The call's logger, already bound to its request id, service and method. */
export const loggerKey = createContextKey<Logger | undefined>(undefined, { description: "request logger" });
