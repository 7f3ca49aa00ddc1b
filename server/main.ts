import { startApp, type App } from "./app.js";
import { ConfigError, loadConfig, type Config, type UnknownSetting } from "./config.js";
import { createLogger, flushLogs } from "./core/logger.js";

/** How long an exit waits for the last log lines to leave stdout. */
const LOG_FLUSH_TIMEOUT_MS = 2000;

/** The process: configuration from the environment, the app, and a graceful exit on SIGTERM/SIGINT. */
function main(): void {
  let config: Config;
  const unknown: UnknownSetting[] = [];
  try {
    config = loadConfig(process.env, (setting) => unknown.push(setting));
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`configuration error: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger(config.logLevel, undefined, config.logFormat);
  for (const { setting, closest } of unknown) logger.warn({ setting, did_you_mean: closest }, "unknown setting ignored");
  const exit = (code: number) => void flushLogs(logger, LOG_FLUSH_TIMEOUT_MS).then(() => process.exit(code));

  const starting = new AbortController();
  const started: Promise<App> = startApp(config, { logger, signal: starting.signal });
  started.catch((err: unknown) => {
    if (err instanceof Error && err.name === "AbortError") {
      logger.info("stopped while waiting for the database at start-up");
      exit(0);
      return;
    }
    process.stderr.write(`failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
    exit(1);
  });

  // Handlers go in before the listener opens, so a signal that arrives while starting still stops gracefully.
  let signals = 0;
  const stop = (signal: NodeJS.Signals) => {
    if (++signals > 1) {
      process.stderr.write(`second ${signal}: exiting now\n`);
      process.exit(1);
    }
    logger.info({ signal }, "shutting down");
    starting.abort();
    // A start-up that fails or is abandoned exits above.
    void started.then(
      async (app) => {
        try {
          await app.close();
          exit(0);
        } catch (err) {
          logger.error({ err }, "shutdown failed");
          exit(1);
        }
      },
      () => {},
    );
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main();
