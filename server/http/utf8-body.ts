import { invalidArgument } from "../core/errors.js";

const strict = new TextDecoder("utf-8", { fatal: true });

/**
 * A JSON request body as text. Bytes that are not UTF-8 are INVALID_ARGUMENT ("body: is not valid
 * UTF-8"): a lenient decoder would turn them into U+FFFD and the service would store that.
 */
export function decodeUtf8Body(bytes: Uint8Array): string {
  try {
    return strict.decode(bytes);
  } catch {
    throw invalidArgument([{ field: "body", description: "is not valid UTF-8" }]);
  }
}
