import { create, createRegistry, fromBinary, toJson, type DescMessage, type JsonObject, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, type ConnectError } from "@connectrpc/connect";
import { file_google_rpc_error_details } from "../../../gen/google/rpc/error_details_pb.js";
import { retryDelayMs } from "../../core/errors.js";
import { codeName } from "../../core/errors.js";

/** HTTP status of each code on the REST paths (SPEC §2; the rest as google.rpc.Code documents them). */
const STATUS: Record<Code, number> = {
  [Code.Canceled]: 499,
  [Code.Unknown]: 500,
  [Code.InvalidArgument]: 400,
  [Code.DeadlineExceeded]: 504,
  [Code.NotFound]: 404,
  [Code.AlreadyExists]: 409,
  [Code.PermissionDenied]: 403,
  [Code.ResourceExhausted]: 429,
  [Code.FailedPrecondition]: 409,
  [Code.Aborted]: 409,
  [Code.OutOfRange]: 400,
  [Code.Unimplemented]: 501,
  [Code.Internal]: 500,
  [Code.Unavailable]: 503,
  [Code.DataLoss]: 500,
  [Code.Unauthenticated]: 401,
};

/** The HTTP status the REST paths answer `code` with. */
export function restStatus(code: Code): number {
  return STATUS[code];
}

const details = createRegistry(file_google_rpc_error_details);

/** A REST error reply: status, headers and the body of SPEC §2. */
export interface RestError {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: JsonObject;
}

/**
 * `{"code": "invalid_argument", "message": "...", "details": [...], "request_id": "..."}` with the
 * original design's `detail` (the message) and, for invalid input, `errors: [{field, message}]` (one
 * per field violation) beside them; the status of SPEC §2 and, on 429 and 503, `Retry-After` in
 * whole seconds (from the error's RetryInfo).
 * Details are the google.rpc messages in their JSON form, each with its `@type`.
 */
export function restError(error: ConnectError, requestId: string, status = STATUS[error.code]): RestError {
  const headers: Record<string, string> = {};
  const challenge = error.metadata.get("www-authenticate");
  if (challenge) headers["www-authenticate"] = challenge;
  if (status === 429 || status === 503) headers["retry-after"] = String(Math.max(1, Math.ceil((retryDelayMs(error) ?? 1000) / 1000)));
  const detailList = error.details.map((d): JsonObject => {
    const type = "type" in d ? d.type : d.desc.typeName;
    const schema = details.getMessage(type);
    const message = !schema ? undefined : "type" in d ? fromBinary(schema, d.value) : create(schema, d.value as MessageInitShape<DescMessage>);
    const fields = message && schema ? toJson(schema, message, { useProtoFieldName: true }) : {};
    return { "@type": `type.googleapis.com/${type}`, ...(fields as JsonObject) };
  });
  const errors = detailList
    .filter((d) => d["@type"] === BAD_REQUEST)
    .flatMap((d) => (Array.isArray(d.field_violations) ? (d.field_violations as JsonObject[]) : []))
    .map((v) => ({ field: v.field ?? "", message: v.description ?? "" }) as JsonObject);
  const body: JsonObject = {
    code: codeName(error.code),
    message: error.rawMessage,
    details: detailList,
    request_id: requestId,
    // The original design's shape, for its callers: FastAPI's `detail`, and `errors` on validation failures.
    detail: error.rawMessage,
    ...(errors.length > 0 ? { errors } : {}),
  };
  return { status, headers, body };
}

const BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest";
