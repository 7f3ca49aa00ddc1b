#!/usr/bin/env node
// `npm start`: compiles the service and builds the dashboard when dist/ is missing or older than their
// sources, then runs the service in this process (so signals reach it directly).
"use strict";
const { buildDashboardIfStale, buildIfStale } = require("./build-if-stale.js");

const entry = buildIfStale();
buildDashboardIfStale();
require(entry);
