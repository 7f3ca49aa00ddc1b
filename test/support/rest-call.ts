/** A parsed REST reply. */
export interface RestReply {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  /** The parsed body (undefined when empty); tests index it freely. */
  readonly json: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** Sends `body` as it is (a string, or nothing) to `base + path`; the reply's status, headers, text and parsed JSON. */
export async function restSend(base: string, method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<RestReply> {
  const res = await fetch(`${base}${path}`, { method, headers, body });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: text ? JSON.parse(text) : undefined };
}

/** A REST call with a JSON body when one is given. */
export function restCall(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<RestReply> {
  return body === undefined
    ? restSend(base, method, path, undefined, headers)
    : restSend(base, method, path, JSON.stringify(body), { "content-type": "application/json", ...headers });
}

/** RFC 3339 in UTC, as the REST paths write times. */
export const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
