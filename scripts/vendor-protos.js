#!/usr/bin/env node
// Copies the third-party .proto files this contract imports from the npm packages that ship them
// (Apache-2.0, headers kept) into proto/. Run it when bumping a source package; the copies are committed.
"use strict";
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

const sources = [
  {
    pkg: "google-proto-files@6.0.1",
    files: {
      "google/api/annotations.proto": "google/api/annotations.proto",
      "google/api/http.proto": "google/api/http.proto",
      "google/api/field_behavior.proto": "google/api/field_behavior.proto",
      "google/rpc/error_details.proto": "google/rpc/error_details.proto",
      "google/rpc/status.proto": "google/rpc/status.proto",
      "google/rpc/code.proto": "google/rpc/code.proto",
    },
  },
  {
    pkg: "grpc-health-check@2.1.0",
    files: { "proto/health/v1/health.proto": "grpc/health/v1/health.proto" },
  },
  {
    pkg: "@grpc/reflection@1.0.4",
    files: {
      "build/proto/grpc/reflection/v1/reflection.proto": "grpc/reflection/v1/reflection.proto",
      "build/proto/grpc/reflection/v1alpha/reflection.proto": "grpc/reflection/v1alpha/reflection.proto",
    },
  },
];

const root = path.resolve(__dirname, "..", "proto");
const work = fs.mkdtempSync(path.join(os.tmpdir(), "vendor-protos-"));
try {
  for (const { pkg, files } of sources) {
    const tarball = execFileSync("npm", ["pack", pkg, "--silent"], { cwd: work }).toString().trim().split("\n").pop();
    const dir = path.join(work, tarball.replace(/\.tgz$/, ""));
    fs.mkdirSync(dir);
    execFileSync("tar", ["xzf", path.join(work, tarball), "-C", dir]);
    for (const [from, to] of Object.entries(files)) {
      const target = path.join(root, to);
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.copyFileSync(path.join(dir, "package", from), target);
      console.log(`${pkg}: ${from} -> proto/${to}`);
    }
  }
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
