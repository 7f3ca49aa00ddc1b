import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema, PreconditionFailureSchema, RetryInfoSchema } from "./gen/google/rpc/error_details_pb.js";

/** One invalid field of a request, e.g. `{ field: "tasks[3].status", description: "..." }`. */
export interface FieldViolation {
  readonly field: string;
  readonly description: string;
}

/** A failed precondition, e.g. the sessions an ambiguous task id was found in. */
export interface PreconditionViolation {
  readonly type: string;
  readonly subject: string;
  readonly description: string;
}

/**
 * Every error the client raises. It is a ConnectError (so `instanceof ConnectError` still holds), with
 * the details the service attaches already decoded: which fields were invalid, when to retry, which
 * precondition failed, and the request id to quote when asking about it.
 */
export class PersistenceError extends ConnectError {
  /**
   * ConnectError answers `instanceof` by shape, so every ConnectError would pass as a
   * PersistenceError; this one checks the prototype chain. (The name stays "ConnectError", which is
   * what keeps `instanceof ConnectError` true for PersistenceErrors.)
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return Function.prototype[Symbol.hasInstance].call(this, value);
  }

  /** The code in its wire spelling, e.g. `"invalid_argument"`. */
  get codeName(): string {
    return Code[this.code].replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
  }

  /** Invalid fields (google.rpc.BadRequest), empty for other errors. */
  get fieldViolations(): FieldViolation[] {
    return this.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => ({ field: v.field, description: v.description })));
  }

  /** Failed preconditions (google.rpc.PreconditionFailure). */
  get preconditionFailures(): PreconditionViolation[] {
    return this.findDetails(PreconditionFailureSchema).flatMap((d) =>
      d.violations.map((v) => ({ type: v.type, subject: v.subject, description: v.description })),
    );
  }

  /** How long the service asks callers to wait before retrying (google.rpc.RetryInfo), in ms. */
  get retryDelayMs(): number | undefined {
    const delay = this.findDetails(RetryInfoSchema)[0]?.retryDelay;
    return delay ? Number(delay.seconds) * 1000 + Math.round(delay.nanos / 1e6) : undefined;
  }

  /** The id of the failed call (the service logs it with every line about the call). */
  get requestId(): string | undefined {
    return this.metadata.get("x-request-id") ?? undefined;
  }

  /** Whether retrying the same request later can succeed (the service was busy, down or timed out). */
  get transient(): boolean {
    return TRANSIENT.has(this.code);
  }

  /**
   * Wraps any error: a ConnectError keeps its code, details and metadata; failing to reach the
   * service at all (connection refused, reset, timed out, name not resolved) is UNAVAILABLE.
   */
  static override from(reason: unknown): PersistenceError {
    if (reason instanceof PersistenceError) return reason;
    const error = ConnectError.from(reason);
    const unreachable = (error.code === Code.Internal || error.code === Code.Unknown) && causes(reason).some((c) => NETWORK_ERRORS.has(c));
    const code = unreachable ? Code.Unavailable : error.code;
    const wrapped = new PersistenceError(error.rawMessage, code, error.metadata, undefined, error.cause ?? reason);
    wrapped.details = error.details;
    if (error.stack) wrapped.stack = error.stack;
    return wrapped;
  }
}

/** Node error codes that mean the service could not be reached. */
const NETWORK_ERRORS = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENOTFOUND", "EAI_AGAIN", "EPIPE", "EHOSTUNREACH", "ENETUNREACH", "ERR_HTTP2_GOAWAY_SESSION"]);

/** The `code` of an error and of each error in its `cause` chain. */
function causes(reason: unknown): string[] {
  const codes: string[] = [];
  for (let e = reason, depth = 0; typeof e === "object" && e !== null && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") codes.push(code);
  }
  return codes;
}

const TRANSIENT = new Set([Code.Unavailable, Code.ResourceExhausted, Code.DeadlineExceeded, Code.Aborted]);
