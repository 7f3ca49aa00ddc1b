"use strict";
// CPU time per process from /proc (Linux): on shared cores, CPU per record is the honest figure,
// wall rates move with whatever else the machine runs.
const fs = require("node:fs");
const os = require("node:os");

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ: 100 on every Linux build of note). */
const TICKS = 100;

/** CPU seconds (user + system) a process has used so far, or undefined when it cannot be read. */
function cpuSeconds(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / TICKS;
  } catch {
    return undefined;
  }
}

/** The load generator itself (this process), from the runtime: finer than clock ticks. */
function selfSeconds() {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

/**
 * Starts counting the CPU of `pids` (name → pid; "load" is this process). `stop(records)` returns CPU
 * ms per 1,000 records for each, their sum, the cores used over the wall time, and the load average.
 */
function startCpu(pids) {
  const read = () => {
    const out = { load: selfSeconds() };
    for (const [name, pid] of Object.entries(pids)) if (pid) out[name] = cpuSeconds(pid);
    return out;
  };
  const before = read();
  const t0 = performance.now();
  return {
    stop(records) {
      const after = read();
      const wall = (performance.now() - t0) / 1000;
      const per1000 = {};
      let total = 0;
      for (const name of Object.keys(after)) {
        if (after[name] === undefined || before[name] === undefined) continue;
        const seconds = after[name] - before[name];
        per1000[name] = Math.round((seconds / records) * 1e6 * 100) / 100;
        total += seconds;
      }
      per1000.total = Math.round((total / records) * 1e6 * 100) / 100;
      return { ms_per_1000: per1000, cores_used: Math.round((total / wall) * 100) / 100, load_average: Math.round(os.loadavg()[0] * 100) / 100 };
    },
  };
}

module.exports = { cpuSeconds, startCpu };
