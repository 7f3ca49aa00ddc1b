import { spawnSync } from "node:child_process";
import { PassThrough } from "node:stream";
import path from "node:path";
import { createStdoutDestination } from "../../server/core/logger";

/** A stream that records each write it is given. */
function recordingStream() {
  const writes: string[] = [];
  const stream = new PassThrough();
  const write = stream.write.bind(stream);
  stream.write = ((chunk: unknown, ...rest: unknown[]) => {
    if (String(chunk).length > 0) writes.push(String(chunk));
    return (write as (...args: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof stream.write;
  stream.resume();
  return { stream, writes };
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe("the stdout log destination", () => {
  it("writes the lines of one turn of the event loop in one write, in order", async () => {
    const { stream, writes } = recordingStream();
    const destination = createStdoutDestination(stream);
    destination.write("a\n");
    destination.write("b\n");
    destination.write("c\n");
    expect(writes).toEqual([]);
    await nextTurn();
    destination.write("d\n");
    await nextTurn();
    expect(writes).toEqual(["a\nb\nc\n", "d\n"]);
  });

  it("writes what waits before its flush reports", async () => {
    const { stream, writes } = recordingStream();
    const destination = createStdoutDestination(stream);
    destination.write("one\n");
    await new Promise<void>((resolve) => destination.flush(resolve));
    expect(writes).toEqual(["one\n"]);
  });

  it("drops lines once the stream failed", async () => {
    const { stream, writes } = recordingStream();
    const destination = createStdoutDestination(stream);
    destination.write("kept\n");
    await nextTurn();
    destination.write("lost\n");
    stream.emit("error", Object.assign(new Error("write EPIPE"), { code: "EPIPE" }));
    destination.write("lost too\n");
    await nextTurn();
    expect(writes).toEqual(["kept\n"]);
  });

  it("writes the lines still waiting when the process exits", () => {
    // A process that logs and exits in the same turn: without the exit hook the line would be lost.
    const root = path.resolve(__dirname, "../..");
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require(path.join(root, "scripts/build-if-stale.js")).buildIfStale();
    const script = `
      const { createStdoutDestination } = require(${JSON.stringify(path.join(root, "dist/server/core/logger.js"))});
      const d = createStdoutDestination();
      d.write("last words\\n");
      process.exit(3);
    `;
    const run = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", cwd: root });
    expect({ status: run.status, stdout: run.stdout }).toEqual({ status: 3, stdout: "last words\n" });
  });
});
