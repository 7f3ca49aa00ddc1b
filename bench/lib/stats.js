"use strict";

/** Quantiles of latency samples (ms). */
function quantiles(samples, qs = [0.5, 0.99, 0.999]) {
  const sorted = Float64Array.from(samples).sort();
  const out = {};
  for (const q of qs) out[`p${String(q * 100).replace(".", "")}`] = sorted.length ? round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]) : null;
  return out;
}

function round(v, digits = 3) {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

module.exports = { quantiles, round, sleep };
