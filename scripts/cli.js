#!/usr/bin/env node
// `npx persistence <command>` / `npm run cli -- <command>`: the operator CLI (server/cli/cli.ts),
// compiled first when dist/ is stale, like `npm start`.
"use strict";
const path = require("node:path");
const { buildIfStale } = require("./build-if-stale.js");

buildIfStale();
const { main } = require(path.join(__dirname, "..", "dist", "server", "cli", "cli.js"));
main(process.argv.slice(2)).then((code) => process.exit(code));
