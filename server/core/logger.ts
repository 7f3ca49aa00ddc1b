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
 * Log lines to `stream` (default stdout) that never hold up the process. Node writes a pipe without
 * blocking and keeps what the reader has not taken yet in memory; once the stream fails (EPIPE: whoever
 * read stdout went away) later lines are dropped. Nothing is written synchronously at exit: pino's own
 * stdout destination does that in an exit hook that retries a failed write forever, so a closed stdout
 * used to hang every shutdown, a second signal included.
 */
export function createStdoutDestination(stream: NodeJS.WritableStream & { readonly writableLength: number } = process.stdout): FlushableDestination {
  let broken = false;
  const stop = () => {
    broken = true;
  };
  stream.on("error", stop);
  stream.on("close", stop);
  return {
    write(line: string) {
      if (!broken) stream.write(line);
    },
    flush(done) {
      if (broken || stream.writableLength === 0) done();
      // Written in order: this empty chunk's callback runs once every earlier line has left (or failed).
      else stream.write("", () => done());
    },
  };
}

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
