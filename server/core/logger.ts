import pino, { type DestinationStream, type Logger } from "pino";
import type { LogLevel } from "../config.js";

export type { Logger };

/**
 * The root JSON logger. Credentials never reach a log line: the listed paths are censored wherever
 * a caller passes headers or settings to it.
 */
export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
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
    destination,
  );
}
