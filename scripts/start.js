#!/usr/bin/env node
// `npm start`: compiles the service when dist/ is missing or older than its sources, then runs it
// in this process (so signals reach it directly).
"use strict";
const { buildIfStale } = require("./build-if-stale.js");

require(buildIfStale());
