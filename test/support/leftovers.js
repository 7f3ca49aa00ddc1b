// What the test files left running in this process. On a 2-core machine Jest runs the suites in band, in
// its own process, so a child process, socket or server a test forgot keeps the whole run from exiting.
// global-teardown.js names each one (so the test that forgot it can be found) and ends it.
"use strict";

/** Describes and ends the child processes, sockets and servers still open; returns the descriptions. */
function endLeftovers() {
  const found = [];
  for (const handle of process._getActiveHandles()) {
    const kind = handle?.constructor?.name ?? typeof handle;
    if (handle === process.stdout || handle === process.stderr || handle === process.stdin) continue;
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
      if (handle.fd === 1 || handle.fd === 2 || handle._type === "pipe" && handle.fd !== undefined && handle.fd <= 2) continue;
      const where = handle.remoteAddress ? `${handle.remoteAddress}:${handle.remotePort} from :${handle.localPort}` : "a pipe";
      found.push(`socket to ${where}`);
      handle.destroy();
    } else if (kind === "Server") {
      const address = handle.address?.();
      found.push(`server on ${typeof address === "object" && address ? `${address.address}:${address.port}` : String(address)}`);
      handle.close?.();
      handle.unref?.();
    } else if (kind !== "WriteStream" && kind !== "ReadStream") {
      found.push(`${kind} handle`);
      handle.unref?.();
    }
  }
  const timers = process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
  if (timers > 0) found.push(`${timers} timer(s) still pending (not ended here: a timer that is not unref'd keeps the run alive)`);
  return found;
}

module.exports = { endLeftovers };
