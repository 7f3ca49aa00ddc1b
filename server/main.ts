import { startApp, type App } from "./app.js";
import { ConfigError, loadConfig, type Config } from "./config.js";

/** The process: configuration from the environment, the app, and a graceful exit on SIGTERM/SIGINT. */
function main(): void {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`configuration error: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const started: Promise<App> = startApp(config);
  started.catch((err: unknown) => {
    process.stderr.write(`failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });

  // Handlers go in before the listener opens, so a signal that arrives while starting still stops gracefully.
  let signals = 0;
  const stop = (signal: NodeJS.Signals) => {
    if (++signals > 1) {
      process.stderr.write(`second ${signal}: exiting now\n`);
      process.exit(1);
    }
    void started.then(async (app) => {
      app.logger.info({ signal }, "shutting down");
      try {
        await app.close();
        process.exit(0);
      } catch (err) {
        app.logger.error({ err }, "shutdown failed");
        process.exit(1);
      }
    });
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main();
