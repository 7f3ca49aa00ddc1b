import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { openWal, type WalFile } from "../../server/core/wal";
import { mountTmpfs } from "../support/tmpfs";

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

  it("skips a damaged stretch in the middle of a segment and reads back the whole frames after it", async () => {
    const dir = tempDir();
    const { wal } = await openWal(dir);
    for (const n of [1, 2, 3]) await wal.append(payload(n), 1);
    await wal.close();
    const file = path.join(dir, readdirSync(dir)[0]!);
    const data = readFileSync(file);
    const second = 8 + payload(1).length;
    data.writeUInt8(data.readUInt8(second + 10) ^ 0xff, second + 10); // inside the second frame
    writeFileSync(file, data);
    const reopened = await openWal(dir);
    expect(reopened.replayed.map((b) => JSON.parse(b.toString()).n)).toEqual([1, 3]);
    expect(reopened.resyncedFrames).toBe(1);
    expect(reopened.discardedBytes).toBe(8 + payload(2).length);
    await reopened.wal.close();
  });
});

/** A segment file whose writes the test can cut short or fail, like a disk that fills up. */
function faultyFiles() {
  const faults = { shortWrites: 0, fullAfterShortWrite: true, fullDisk: false, truncateFails: false };
  const openFile = async (file: string): Promise<WalFile> => {
    const real = await open(file, "a");
    return {
      async writev(buffers) {
        if (faults.fullDisk) throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
        if (faults.shortWrites > 0) {
          faults.shortWrites--;
          const all = Buffer.concat(buffers);
          const half = all.subarray(0, Math.ceil(all.length / 2));
          await real.write(half);
          // A disk that took part of a write is usually full for the next one.
          faults.fullDisk = faults.fullAfterShortWrite;
          return { bytesWritten: half.length };
        }
        return real.writev(buffers);
      },
      datasync: () => real.datasync(),
      async truncate(length) {
        if (faults.truncateFails) throw Object.assign(new Error("EIO: i/o error, ftruncate"), { code: "EIO" });
        return real.truncate(length);
      },
      stat: () => real.stat(),
      close: () => real.close(),
    };
  };
  return { faults, openFile };
}

describe("the write-ahead log on a disk that fills up", () => {
  it("does not acknowledge a frame the disk took only part of, and keeps the log readable for the frames after it", async () => {
    const dir = tempDir();
    const { faults, openFile } = faultyFiles();
    const { wal } = await openWal(dir, { openFile });
    await wal.append(payload(1), 1);
    faults.shortWrites = 1;
    await expect(wal.append(payload(2), 1)).rejects.toThrow(/ENOSPC/);
    expect(wal.stats()).toMatchObject({ records: 1, failures: 1 });
    faults.fullDisk = false; // space freed
    await wal.append(payload(3), 1);
    await wal.append(payload(4), 1);
    await wal.close();

    const reopened = await openWal(dir);
    expect(reopened.replayed.map((b) => JSON.parse(b.toString()).n)).toEqual([1, 3, 4]);
    expect(reopened.discardedBytes).toBe(0);
    await reopened.wal.close();
  });

  it("writes the rest of a frame after a short write that the disk then completes", async () => {
    const dir = tempDir();
    const { faults, openFile } = faultyFiles();
    const { wal } = await openWal(dir, { openFile });
    faults.shortWrites = 1;
    faults.fullAfterShortWrite = false; // the disk takes the rest on the next attempt
    await wal.append(payload(7), 1);
    await wal.close();
    const reopened = await openWal(dir);
    expect(reopened.replayed.map((b) => JSON.parse(b.toString()).n)).toEqual([7]);
    await reopened.wal.close();
  });

  it("moves on to a new segment when a failed write cannot be cut back, so later frames are not stranded behind a torn one", async () => {
    const dir = tempDir();
    const { faults, openFile } = faultyFiles();
    const { wal } = await openWal(dir, { openFile });
    await wal.append(payload(1), 1);
    faults.shortWrites = 1;
    faults.truncateFails = true;
    await expect(wal.append(payload(2), 1)).rejects.toThrow(/ENOSPC/);
    faults.fullDisk = false;
    faults.truncateFails = false;
    await wal.append(payload(3), 1);
    await wal.close();
    expect(readdirSync(dir)).toHaveLength(2);

    const reopened = await openWal(dir);
    expect(reopened.replayed.map((b) => JSON.parse(b.toString()).n)).toEqual([1, 3]);
    expect(reopened.resyncedFrames).toBe(0);
    await reopened.wal.close();
  });

  // A real full disk: a small tmpfs. Mounting needs privileges that not every machine grants.
  const disk = mountTmpfs("1m", "the real full-disk WAL test");
  afterAll(() => disk?.remove());
  (disk ? it : it.skip)("on a real tmpfs that fills up: refuses what it cannot store, and after space is freed loses nothing it acknowledged", async () => {
    const dir = path.join(disk!.dir, "wal");
    const filler = path.join(disk!.dir, "filler");
    writeFileSync(filler, Buffer.alloc(900 * 1024));
    const { wal } = await openWal(dir);
    const big = (n: number) => Buffer.from(JSON.stringify({ n, text: "x".repeat(20_000) }));
    const acked: number[] = [];
    let refused = 0;
    for (let n = 0; n < 200 && refused < 3; n++) {
      try {
        await wal.append(big(n), 1);
        acked.push(n);
      } catch (err) {
        expect((err as NodeJS.ErrnoException).code).toBe("ENOSPC");
        refused++;
      }
    }
    expect(refused).toBe(3);
    rmSync(filler);
    for (let n = 1000; n < 1020; n++) {
      await wal.append(big(n), 1);
      acked.push(n);
    }
    await wal.close();
    const reopened = await openWal(dir);
    expect(reopened.replayed.map((b) => JSON.parse(b.toString()).n)).toEqual(acked);
    expect(reopened.discardedBytes).toBe(0);
    await reopened.wal.close();
  });
});
