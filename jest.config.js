/** Jest in CommonJS mode: @swc/jest strips types (tsc --noEmit checks them in `npm run lint`). */
module.exports = {
  testEnvironment: "node",
  testMatch: ["<rootDir>/test/**/*.test.ts"],
  modulePathIgnorePatterns: ["<rootDir>/dist/", "<rootDir>/clients/dist/"],
  transform: {
    "^.+\\.ts$": [
      "@swc/jest",
      { jsc: { target: "es2022", parser: { syntax: "typescript" } }, module: { type: "commonjs" } },
    ],
  },
  // Sources import with .js extensions (Node ESM style); Jest resolves the .ts files.
  moduleNameMapper: { "^(\\.{1,2}/.*)\\.js$": "$1" },
  collectCoverageFrom: ["server/**/*.ts", "!server/main.ts", "!server/dashboard/web/**", "clients/src/**/*.ts", "!clients/src/gen/**"],
  coverageReporters: ["text-summary", "json-summary"],
  coverageThreshold: { global: { lines: 80 } },
  testTimeout: 60_000,
  globalSetup: "<rootDir>/test/support/global-setup.js",
  globalTeardown: "<rootDir>/test/support/global-teardown.js",
  reporters: ["default", "<rootDir>/test/support/summary-reporter.js"],
};
