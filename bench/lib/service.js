"use strict";
// Starts the built service (dist/) as its own process on a free loopback port.
const { spawn } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const readline = require("node:readline");

const ROOT = path.resolve(__dirname, "..", "..");

/**
 * Spawns `node <args>` with `env`, reads its stdout line by line (so it never blocks on a full pipe),
 * hands each line to `onLine`, and resolves with the url of its first line holding "listening".
 */
async function spawnListening(name, args, env, onLine = () => false) {
  const child = spawn(process.execPath, args, { env, stdio: ["ignore", "pipe", "inherit"] });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const url = await new Promise((resolve, reject) => {
    exited.then((code) => reject(new Error(`${name} exited with ${code} before listening`)));
    readline.createInterface({ input: child.stdout }).on("line", (line) => {
      if (!onLine(line) && line.includes('"listening"')) resolve(JSON.parse(line).url);
    });
  });
  return { child, exited, url };
}

/**
 * The service with PERSISTENCE_* settings `env`; resolves once it listens. With `keepCallLog`, the
 * access log's lines are kept, and `handlingTimes(method)` returns the service's own duration_ms of
 * each call of `method` since the last `clearCallLog()`.
 */
async function startService(env = {}, { keepCallLog = false } = {}) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-service-"));
  // BENCH_NODE_ARGS passes flags to the service's node, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? "").split(" ").filter(Boolean);
  let callLog = [];
  const keep = (line) => {
    if (!keepCallLog || !line.includes('"msg":"call"')) return false;
    callLog.push(line);
    return true;
  };
  const { child, exited, url } = await spawnListening(
    "the service",
    [...nodeArgs, path.join(ROOT, "dist/server/main.js")],
    { ...process.env, PERSISTENCE_LISTEN: "127.0.0.1:0", PERSISTENCE_DATA_DIR: dataDir, PERSISTENCE_LOG_LEVEL: "info", ...env },
    keep,
  );
  return {
    url,
    pid: child.pid,
    /** The service's Prometheus figures now: "name{labels}" → value. */
    async metrics() {
      const text = await (await fetch(`${url}/metrics`)).text();
      const out = new Map();
      for (const line of text.split("\n")) {
        if (line === "" || line.startsWith("#")) continue;
        const at = line.lastIndexOf(" ");
        out.set(line.slice(0, at), Number(line.slice(at + 1)));
      }
      return out;
    },
    clearCallLog() {
      callLog = [];
    },
    handlingTimes(method) {
      return callLog.map((line) => JSON.parse(line)).filter((entry) => entry.method === method).map((entry) => entry.duration_ms);
    },
    async stop() {
      child.kill("SIGTERM");
      await exited;
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The bare node:http2 gRPC server (bare-grpc-server.js) in its own process: the machine's floor for one call. */
async function startBareGrpc() {
  const { child, exited, url } = await spawnListening("the bare gRPC server", [path.join(__dirname, "bare-grpc-server.js")], process.env);
  return {
    url,
    pid: child.pid,
    async stop() {
      child.kill("SIGTERM");
      await exited;
    },
  };
}

module.exports = { ROOT, startService, startBareGrpc };
