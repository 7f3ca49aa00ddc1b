import { create } from "@bufbuild/protobuf";
import { durationFromMs, durationMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  BadRequest_FieldViolationSchema,
  BadRequestSchema,
  PreconditionFailure_ViolationSchema,
  PreconditionFailureSchema,
  RetryInfoSchema,
} from "../../gen/google/rpc/error_details_pb.js";

/**
 * The one place errors are made. Every error that reaches a caller is a ConnectError with a stable
 * Code and, where the caller can act on it, a google.rpc detail (field violations, retry delay).
 */

/** One invalid field: `field` is a path such as `tasks[3].confidence`. */
export interface FieldViolation {
  readonly field: string;
  readonly description: string;
}

/** INVALID_ARGUMENT naming every violated field, with a google.rpc.BadRequest detail. */
export function invalidArgument(violations: readonly FieldViolation[]): ConnectError {
  const shown = violations.slice(0, 5).map((v) => `${v.field}: ${v.description}`);
  const more = violations.length > shown.length ? ` (and ${violations.length - shown.length} more)` : "";
  return new ConnectError(`invalid request: ${shown.join("; ")}${more}`, Code.InvalidArgument, undefined, [
    {
      desc: BadRequestSchema,
      value: create(BadRequestSchema, {
        fieldViolations: violations.map((v) => create(BadRequest_FieldViolationSchema, v)),
      }),
    },
  ]);
}

/** NOT_FOUND for one entity, e.g. notFound("session", "abc"). */
export function notFound(kind: string, id: string): ConnectError {
  return new ConnectError(`${kind} ${JSON.stringify(id)} not found`, Code.NotFound);
}

/** FAILED_PRECONDITION with a google.rpc.PreconditionFailure detail. */
export function failedPrecondition(
  message: string,
  violation: { type: string; subject: string; description: string },
): ConnectError {
  return new ConnectError(message, Code.FailedPrecondition, undefined, [
    {
      desc: PreconditionFailureSchema,
      value: create(PreconditionFailureSchema, { violations: [create(PreconditionFailure_ViolationSchema, violation)] }),
    },
  ]);
}

/** RESOURCE_EXHAUSTED telling the caller when to retry (google.rpc.RetryInfo). */
export function resourceExhausted(message: string, retryAfterMs: number): ConnectError {
  return withRetry(message, Code.ResourceExhausted, retryAfterMs);
}

/** UNAVAILABLE for a backend that cannot be reached, with a retry delay. */
export function unavailable(message: string, retryAfterMs: number): ConnectError {
  return withRetry(message, Code.Unavailable, retryAfterMs);
}

/** INTERNAL for anything unexpected: carries the request id so operators can find the log line, and nothing else. */
export function internal(requestId: string): ConnectError {
  return new ConnectError(`internal error (request id ${requestId})`, Code.Internal);
}

/**
 * What a call ends with when its caller went away (a cancel, a dropped connection) or its deadline
 * passed, given the call signal's abort reason: DEADLINE_EXCEEDED for a deadline, CANCELLED otherwise.
 */
export function cancelled(reason: unknown): ConnectError {
  if (reason instanceof ConnectError && reason.code === Code.DeadlineExceeded) return reason;
  const how = reason instanceof ConnectError ? ` (${reason.rawMessage})` : "";
  return new ConnectError(`the call was cancelled${how}`, Code.Canceled);
}

/** The retry delay carried by an error, in milliseconds, if it has one. */
export function retryDelayMs(err: ConnectError): number | undefined {
  const info = err.findDetails(RetryInfoSchema)[0];
  return info?.retryDelay ? durationMs(info.retryDelay) : undefined;
}

function withRetry(message: string, code: Code, retryAfterMs: number): ConnectError {
  return new ConnectError(message, code, undefined, [
    { desc: RetryInfoSchema, value: create(RetryInfoSchema, { retryDelay: durationFromMs(retryAfterMs) }) },
  ]);
}

/** snake_case name of a code, as the Connect protocol spells it ("invalid_argument"). */
export function codeName(code: Code): string {
  return Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}
