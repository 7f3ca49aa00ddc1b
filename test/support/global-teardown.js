// After the whole run: no log line of any service the tests started may hold a secret the tests
// gave it (API keys, database and user passwords, login tokens; registered with secret() in
// secrets.ts), nor an Authorization header, a login session token or a password hash. Fails the
// run, naming how many lines leaked, never the secret itself.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const { endLeftovers } = require("./leftovers");

module.exports = async () => {
  const leftovers = await endLeftovers();
  if (leftovers.length > 0) {
    process.stdout.write(`LEFTOVERS: the tests left ${leftovers.length} thing(s) running, now ended:\n${leftovers.map((l) => `  - ${l}`).join("\n")}\n`);
  }
  const dir = process.env.PERSISTENCE_TEST_RUN_DIR;
  if (!dir || !fs.existsSync(dir)) return;
  try {
    const secretsFile = path.join(dir, "secrets.txt");
    const secrets = fs.existsSync(secretsFile) ? [...new Set(fs.readFileSync(secretsFile, "utf8").split("\n").filter(Boolean))] : [];
    let lines = 0;
    const leaks = new Map();
    for (const file of fs.readdirSync(dir).filter((f) => f.startsWith("logs-"))) {
      for (const line of fs.readFileSync(path.join(dir, file), "utf8").split("\n")) {
        if (!line) continue;
        lines++;
        const found = secrets.filter((s) => line.includes(s));
        if (/bearer\s+[a-z0-9-]{8,}/i.test(line)) found.push("a bearer token");
        // Whatever the tests registered: no login session token and no password hash, ever.
        if (/pst_[A-Za-z0-9_-]{43}/.test(line)) found.push("a login session token");
        if (line.includes("$scrypt$")) found.push("a password hash");
        for (const f of found) {
          const label = secrets.includes(f) ? `secret #${secrets.indexOf(f)}` : f;
          leaks.set(label, (leaks.get(label) ?? 0) + 1);
        }
      }
    }
    if (leaks.size > 0) {
      const detail = [...leaks].map(([label, n]) => `${label} in ${n} line(s)`).join(", ");
      throw new Error(`log leak check: ${detail} (of ${lines} log lines)`);
    }
    process.stdout.write(`log leak check: ${lines} log lines of this run hold none of the ${secrets.length} secrets the tests used\n`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
};
