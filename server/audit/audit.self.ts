import { AuditResult } from "../../gen/persistence/v1/audit_pb.js";
import type { JsonObject } from "@bufbuild/protobuf";
import type { Logger } from "../core/logger.js";
import type { Caller } from "./audit.handler.js";
import type { AuditInput } from "./audit.service.js";

/** The audit module's entries about itself: who read, exported or verified the audit logs. */
export interface SelfAudit {
  /** Records a read of the audit logs; never fails the read (a refused entry is logged). */
  read(action: string, caller: Caller, details: JsonObject): void;
}

export function createSelfAudit(write: (entries: AuditInput[]) => Promise<unknown>, logger: Logger): SelfAudit {
  return {
    read(action, caller, details) {
      const entry: AuditInput = {
        action,
        result: AuditResult.SUCCESS,
        actor: caller.keyName ? { type: "api_key", id: caller.keyName, name: caller.keyName } : { type: "anonymous" },
        resource: { type: "audit_log" },
        ...(caller.ip ? { ip: caller.ip } : {}),
        ...(caller.userAgent ? { userAgent: caller.userAgent.slice(0, 512) } : {}),
        ...(caller.requestId ? { requestId: caller.requestId } : {}),
        // The query searched for is in the message too, so the reads of a term can be found by that term.
        message: typeof details.query === "string" && details.query !== "" ? `${action}: ${details.query}` : action,
        details,
      };
      write([entry]).catch((err: unknown) => logger.warn({ err: String((err as Error).message ?? err), action }, "audit of an audit read not recorded"));
    },
  };
}
