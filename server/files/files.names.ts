import { invalidArgument } from "../core/errors.js";

/** Longest filename kept, in UTF-8 bytes (a common file-system limit). */
const MAX_FILENAME_BYTES = 255;

/**
 * The name a file is stored under: whatever path the uploader sent is cut to its last segment
 * ("../../a.xlsx" is "a.xlsx", "C:\\x\\b.csv" is "b.csv"); control characters (NUL included) and a name
 * that is nothing but dots are refused. The name is only ever shown, never used as a path: objects
 * are stored under the file's id.
 */
export function sanitizeFilename(raw: string, field = "filename"): string {
  if (raw === "") throw invalidArgument([{ field, description: "is required" }]);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(raw)) throw invalidArgument([{ field, description: "must not contain control characters (NUL, newline, ...)" }]);
  const name = (raw.split(/[/\\]/).pop() ?? "").trim();
  if (name === "" || /^\.+$/.test(name)) throw invalidArgument([{ field, description: `${JSON.stringify(raw)} names no file` }]);
  if (Buffer.byteLength(name) > MAX_FILENAME_BYTES) throw invalidArgument([{ field, description: `must be at most ${MAX_FILENAME_BYTES} bytes of UTF-8` }]);
  return name;
}

/** RFC 5987 attr-char: what may stay unencoded in `filename*`. */
const ATTR_CHAR = /[A-Za-z0-9!#$&+\-.^_`|~]/;

/**
 * A Content-Disposition header for a download of `filename` (RFC 6266): an ASCII `filename` fallback
 * for old clients, and the exact name in `filename*` as UTF-8, percent-encoded (RFC 5987), so Chinese
 * names arrive intact and nothing in a name can break out of the header.
 */
export function contentDisposition(filename: string, inline = false): string {
  const fallback = [...filename].map((c) => (/^[\x20-\x7e]$/.test(c) && c !== '"' && c !== "\\" ? c : "_")).join("");
  const encoded = [...Buffer.from(filename, "utf8")]
    .map((b) => {
      const c = String.fromCharCode(b);
      return b < 0x80 && ATTR_CHAR.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
    })
    .join("");
  return `${inline ? "inline" : "attachment"}; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}
