import { ConnectError } from "@connectrpc/connect";

/** The error a call ends with; fails the test when the call succeeds. */
export async function errorOf(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("the call succeeded");
}
