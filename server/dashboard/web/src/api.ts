import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { SystemService } from "../../../../gen/persistence/v1/system_pb.js";
import { TranslationService } from "../../../../gen/persistence/v1/translation_pb.js";

/**
 * The page's one way to the service: the API key the user entered (kept in sessionStorage for this
 * browser session only, never in a URL), sent as `x-api-key` on every call, Connect calls through the
 * generated clients and plain REST calls for the rest.
 */
const KEY_ITEM = "persistence.dashboard.api_key";

export function apiKey(): string {
  return sessionStorage.getItem(KEY_ITEM) ?? "";
}

export function setApiKey(key: string): void {
  if (key) sessionStorage.setItem(KEY_ITEM, key);
  else sessionStorage.removeItem(KEY_ITEM);
  for (const listener of keyListeners) listener();
}

const keyListeners = new Set<() => void>();
/** Calls `listener` whenever the key changes; returns the unsubscribe. */
export function onKeyChange(listener: () => void): () => void {
  keyListeners.add(listener);
  return () => keyListeners.delete(listener);
}

function keyHeaders(): Record<string, string> {
  const key = apiKey();
  return key ? { "x-api-key": key } : {};
}

const withKey: Interceptor = (next) => (req) => {
  for (const [name, value] of Object.entries(keyHeaders())) req.header.set(name, value);
  return next(req);
};

const transport = createConnectTransport({ baseUrl: location.origin, interceptors: [withKey] });
export const system = createClient(SystemService, transport);
export const translation = createClient(TranslationService, transport);

/** A failed call, REST or Connect, in the user's words. */
export class ApiError extends Error {
  constructor(
    message: string,
    /** The contract's code name: "unauthenticated", "permission_denied", "not_found", ... */
    readonly code: string,
    /** HTTP status on REST, 0 on Connect. */
    readonly status = 0,
  ) {
    super(message);
  }
  get refused(): boolean {
    return this.code === "unauthenticated" || this.code === "permission_denied";
  }
}

/** Turns anything thrown by a call into an ApiError. */
export function apiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const connect = ConnectError.from(err);
  const name = Code[connect.code].replace(/[A-Z]/g, (c, i: number) => (i ? "_" : "") + c.toLowerCase());
  return new ApiError(connect.rawMessage, name);
}

/** GET a REST path (SPEC's JSON dialect), with the key. */
export async function restGet<T>(path: string, params: Record<string, string | number | undefined> = {}, signal?: AbortSignal): Promise<T> {
  const res = await restFetch(path, params, signal);
  return (await res.json()) as T;
}

/** The raw response of a REST GET, after refusing errors (for downloads). */
export async function restFetch(path: string, params: Record<string, string | number | undefined> = {}, signal?: AbortSignal): Promise<Response> {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== undefined && value !== "") query.set(name, String(value));
  const url = query.size ? `${path}?${query}` : path;
  const res = await fetch(url, { headers: { accept: "application/json", ...keyHeaders() }, signal: signal ?? null });
  if (res.ok) return res;
  let code = res.status === 404 ? "not_found" : "unknown";
  let message = `${res.status} ${res.statusText}`;
  try {
    const body = (await res.json()) as { code?: string; message?: string };
    code = body.code ?? code;
    message = body.message ?? message;
  } catch {
    // Not the service's JSON error: keep the status line.
  }
  throw new ApiError(message, code, res.status);
}

/** A sentence for an error shown in a pane. */
export function describeError(err: ApiError): string {
  if (err.code === "unauthenticated") return "The service wants an API key: enter one above.";
  if (err.code === "permission_denied") return `This API key may not do that: ${err.message}`;
  return err.message;
}
