import pino, { type DestinationStream, type Logger } from "pino";
import { prettyFactory } from "pino-pretty";
import type { LogFormat, LogLevel } from "../config.js";

export type { Logger };

/**
 * The root logger: JSON lines, or (`format` "pretty") pino-pretty's readable lines for a developer at a
 * terminal. Credentials never reach a log line: the listed paths are censored wherever a caller passes
 * headers or settings to it. Writes to stdout (createStdoutDestination) by default.
 */
export function createLogger(level: LogLevel, destination: DestinationStream = createStdoutDestination(), format: LogFormat = "json"): Logger {
  return pino(
    {
      level,
      name: "persistence",
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: ["authorization", "*.authorization", "x-api-key", "*.x-api-key", "password", "*.password", "key", "*.key"],
        censor: "[redacted]",
      },
    },
    format === "pretty" ? prettyDestination(destination) : destination,
  );
}

/** Each JSON line turned into pino-pretty's form before it reaches `destination` (which keeps its flush). */
function prettyDestination(destination: DestinationStream): DestinationStream {
  const pretty = prettyFactory({ colorize: process.stdout.isTTY === true, translateTime: "SYS:yyyy-mm-dd HH:MM:ss.l o", ignore: "pid,hostname" });
  const flush = (destination as Partial<FlushableDestination>).flush?.bind(destination);
  return { write: (line: string) => destination.write(pretty(line)), ...(flush ? { flush } : {}) } as DestinationStream;
}

/** A log destination that can say when the lines written to it so far have left (pino's `logger.flush(cb)` asks it). */
export interface FlushableDestination extends DestinationStream {
  flush(done: () => void): void;
}

/**
 * Log lines to `stream` (default stdout) that never hold up the process. The lines of one turn of the
 * event loop leave in one write (one system call instead of one per line: an RPC logs a line each), and
 * whatever is still waiting is written when the process exits. Node writes a pipe without blocking and
 * keeps what the reader has not taken yet in memory; once the stream fails (EPIPE: whoever read stdout
 * went away) later lines are dropped. Nothing is retried at exit: pino's own stdout destination does
 * that in an exit hook that retries a failed write forever, so a closed stdout used to hang every
 * shutdown, a second signal included.
 */
export function createStdoutDestination(stream: NodeJS.WritableStream & { readonly writableLength: number } = process.stdout): FlushableDestination {
  let broken = false;
  let pending: string[] = [];
  let scheduled = false;
  const stop = () => {
    broken = true;
    pending = [];
    waiting.delete(send);
  };
  const send = () => {
    scheduled = false;
    waiting.delete(send);
    if (pending.length === 0 || broken) return;
    const text = pending.length === 1 ? pending[0]! : pending.join("");
    pending = [];
    stream.write(text);
  };
  stream.on("error", stop);
  stream.on("close", stop);
  return {
    write(line: string) {
      if (broken) return;
      pending.push(line);
      if (scheduled) return;
      scheduled = true;
      waiting.add(send);
      setImmediate(send);
    },
    flush(done) {
      send();
      if (broken || stream.writableLength === 0) done();
      // Written in order: this empty chunk's callback runs once every earlier line has left (or failed).
      else stream.write("", () => done());
    },
  };
}

/** Destinations with lines not written yet; an exit writes them (a pipe or file on stdout is written synchronously then). */
const waiting = new Set<() => void>();
process.on("exit", () => {
  for (const send of [...waiting]) send();
});

/** Resolves once the lines `logger` wrote so far have left, or after `timeoutMs` (a stdout that nobody reads must not hold an exit). */
export function flushLogs(logger: Logger, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    logger.flush(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
