import type { ConnectNodeAdapterOptions } from "@connectrpc/connect-node";

type Fallback = NonNullable<ConnectNodeAdapterOptions["fallback"]>;

/** A request as Node's HTTP/1.1 and HTTP/2 (compatibility API) servers hand it over. */
export type NodeRequest = Parameters<Fallback>[0];
/** The matching response, with a `write` both kinds share. */
export type NodeResponse = Parameters<Fallback>[1];

/** A request header's value (the first, when it was sent more than once). */
export function headerOf(req: NodeRequest, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
