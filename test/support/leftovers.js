// What the test files left running in this process. On a 2-core machine Jest runs the suites in band, in
// its own process, so a child process, socket or server a test forgot keeps the whole run from exiting.
// global-teardown.js names each one (so the test that forgot it can be found) and ends it.
"use strict";

/** The handles that count: what a test opened (not this process's stdio). */
function openHandles() {
  return process._getActiveHandles().filter((handle) => {
    if (handle === process.stdout || handle === process.stderr || handle === process.stdin) return false;
    const kind = handle?.constructor?.name;
    if (kind === "Socket" || kind === "TLSSocket") {
      if (handle.fd === 1 || handle.fd === 2 || (handle._type === "pipe" && handle.fd !== undefined && handle.fd <= 2)) return false;
      // Ended by its owner, waiting for the peer to close: not a leftover.
      if (handle.writableEnded || handle.destroyed) return false;
    }
    return kind !== "WriteStream" && kind !== "ReadStream";
  });
}

/**
 * Waits up to `graceMs` for what is closing (a database connection after its QUIT, a child after its
 * signal) to go, then describes and ends the child processes, sockets and servers still open; returns
 * the descriptions.
 */
async function endLeftovers(graceMs = 2000) {
  const until = Date.now() + graceMs;
  while (openHandles().length > 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 100));
  const found = [];
  for (const handle of openHandles()) {
    const kind = handle?.constructor?.name ?? typeof handle;
    if (kind === "ChildProcess") {
      found.push(`child process ${handle.pid}: ${(handle.spawnargs ?? []).join(" ").slice(0, 200)}`);
      try {
        handle.kill("SIGKILL");
      } catch {
        // already gone
      }
      handle.unref?.();
      for (const s of [handle.stdin, handle.stdout, handle.stderr]) s?.destroy?.();
    } else if (kind === "Socket" || kind === "TLSSocket") {
      const where = handle.remoteAddress ? `${handle.remoteAddress}:${handle.remotePort} from :${handle.localPort}` : "a pipe";
      found.push(`socket to ${where}`);
      handle.destroy();
    } else if (kind === "Server") {
      const address = handle.address?.();
      found.push(`server on ${typeof address === "object" && address ? `${address.address}:${address.port}` : String(address)}`);
      handle.close?.();
      handle.unref?.();
    } else {
      found.push(`${kind} handle`);
      handle.unref?.();
    }
  }
  return found;
}

module.exports = { endLeftovers };
