import { appendFileSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { openWal } from "../../server/core/wal";

const tempDir = () => mkdtempSync(path.join(os.tmpdir(), "persistence-wal-unit-"));
const payload = (n: number) => Buffer.from(JSON.stringify({ n, text: "翻訳".repeat(n) }));

describe("the write-ahead log", () => {
  it("reads back every frame of an earlier run, in order", async () => {
    const dir = tempDir();
    const first = await openWal(dir);
    expect(first.replayed).toEqual([]);
    await Promise.all([1, 2, 3].map((n) => first.wal.append(payload(n), 1)));
    first.wal.rotate();
    await first.wal.append(payload(4), 2);
    expect(first.wal.stats()).toMatchObject({ segments: 2, records: 5 });
    await first.wal.close();

    const second = await openWal(dir);
    expect(second.replayed.map((b) => JSON.parse(b.toString()).n)).toEqual([1, 2, 3, 4]);
    expect(second.discardedBytes).toBe(0);
    await second.wal.close();
  });

  it("shares one fsync among appends waiting at the same moment", async () => {
    const { wal } = await openWal(tempDir());
    await Promise.all(Array.from({ length: 200 }, (_, i) => wal.append(payload(i % 5), 1)));
    expect(wal.stats().fsyncs).toBeLessThan(10);
    await wal.close();
  });

  it("stops at a torn or corrupt frame and keeps the frames before it", async () => {
    const dir = tempDir();
    const { wal } = await openWal(dir);
    await wal.append(payload(1), 1);
    await wal.append(payload(2), 1);
    await wal.close();
    const file = path.join(dir, readdirSync(dir)[0]!);
    const whole = readFileSync(file);

    appendFileSync(file, whole.subarray(0, 11)); // a frame cut short by a crash
    const torn = await openWal(dir);
    expect(torn.replayed.map((b) => JSON.parse(b.toString()).n)).toEqual([1, 2]);
    expect(torn.discardedBytes).toBe(11);
    await torn.wal.close();

    const corrupt = Buffer.from(whole);
    const at = corrupt.length - 3; // inside the second frame's payload
    corrupt.writeUInt8(corrupt.readUInt8(at) ^ 0xff, at);
    writeFileSync(file, corrupt);
    const flipped = await openWal(dir);
    expect(flipped.replayed.map((b) => JSON.parse(b.toString()).n)).toEqual([1]);
    await flipped.wal.close();
  });

  it("deletes the segments before a boundary once their records are committed", async () => {
    const dir = tempDir();
    const { wal } = await openWal(dir);
    await wal.append(payload(1), 3);
    const boundary = wal.rotate();
    const later = wal.append(payload(2), 4);
    await wal.truncateBefore(boundary);
    await later;
    expect(wal.stats()).toMatchObject({ segments: 1, records: 4 });
    expect(readdirSync(dir)).toHaveLength(1);
    await wal.close();
    const reopened = await openWal(dir);
    expect(reopened.replayed.map((b) => JSON.parse(b.toString()).n)).toEqual([2]);
    await reopened.wal.close();
  });
});
