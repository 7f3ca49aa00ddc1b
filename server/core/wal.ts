import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { open, rm, type FileHandle } from "node:fs/promises";
import path from "node:path";
import { crc32 } from "node:zlib";

/**
 * The write-ahead log: accepted records, appended as checksummed frames to numbered segment files
 * and fsync'd in groups (every append waiting at one moment shares one fsync). A flush rotates to a
 * new segment; once it commits, the segments before it are deleted. After a crash the frames left
 * are read back; a torn or corrupt stretch (a frame cut short by the crash was never acknowledged as
 * logged) is skipped up to the next whole frame, and counted.
 *
 * An append resolves only once all of its bytes are written and fsync'd. One that fails (a full disk,
 * an I/O error, a short write) takes its segment back to the length it had before, so no torn frame
 * ever sits in front of later ones; if even that fails, later frames go to a new segment.
 *
 * Frame: u32 payload length, u32 CRC-32 of the payload, payload (little-endian).
 */
export interface WriteAheadLog {
  /**
   * Queues a frame holding `records` records in the current segment now; resolves once it is on disk.
   * The payload is written as it is, not copied: it must not change until then.
   */
  append(payload: Buffer, records: number): Promise<void>;
  /** Starts a new segment for the frames that follow; returns its number (the boundary for truncateBefore). */
  rotate(): number;
  /** Deletes every segment numbered below `boundary` once its frames are written. */
  truncateBefore(boundary: number): Promise<void>;
  /** Segments, and records appended (or replayed) and not yet truncated. */
  stats(): { segments: number; records: number; fsyncs: number; failures: number };
  /** Writes what is queued and closes the files. */
  close(): Promise<void>;
}

/** The file operations the log uses: a subset of `fs/promises` FileHandle (tests wrap it to inject faults). */
export interface WalFile {
  writev(buffers: Buffer[]): Promise<{ bytesWritten: number }>;
  datasync(): Promise<void>;
  truncate(length: number): Promise<void>;
  stat(): Promise<{ size: number }>;
  close(): Promise<void>;
}

export interface WalOptions {
  /** Opens a segment file for appending (default: `fs.promises.open(file, "a")`). */
  readonly openFile?: (file: string) => Promise<WalFile>;
}

export interface OpenedWal {
  readonly wal: WriteAheadLog;
  /** Payloads found from an earlier run, in append order. */
  readonly replayed: Buffer[];
  /** Call once the replayed payloads are decoded: how many records they held (for stats()). */
  countReplayed(records: number): void;
  /** Bytes of torn or corrupt frames skipped during replay. */
  readonly discardedBytes: number;
  /** Whole frames found after a torn or corrupt stretch (and replayed): nonzero means a segment was damaged mid-file. */
  readonly resyncedFrames: number;
}

const HEADER = 8;
const SEGMENT = /^(\d{16})\.wal$/;

/** Whether a file name is one of the log's segments. */
export function isSegmentFile(name: string): boolean {
  return SEGMENT.test(name);
}

interface Pending {
  /** Reassigned to a newer segment when its own could not be repaired after a failed write. */
  segment: number;
  /** Its header and payload. */
  readonly frame: readonly Buffer[];
  readonly records: number;
  readonly done: (err?: Error) => void;
}

/** Opens (creating) the log in `dir` and reads back whatever an earlier run left there. */
export async function openWal(dir: string, options: WalOptions = {}): Promise<OpenedWal> {
  mkdirSync(dir, { recursive: true });
  const existing = readdirSync(dir)
    .map((name) => SEGMENT.exec(name))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);

  const replayed: Buffer[] = [];
  let discardedBytes = 0;
  /** Records per segment still on disk. */
  const recordCounts = new Map<number, number>();
  let resyncedFrames = 0;
  for (const segment of existing) {
    const data = readFileSync(path.join(dir, fileName(segment)));
    let offset = 0;
    let damaged = false;
    while (offset + HEADER <= data.length) {
      const end = frameEnd(data, offset);
      if (end === undefined) {
        // Not a whole frame here: skip to the next offset that holds one (none, for a torn tail).
        const next = nextFrame(data, offset + 1);
        discardedBytes += next - offset;
        offset = next;
        damaged = true;
        continue;
      }
      replayed.push(Buffer.from(data.subarray(offset + HEADER, end)));
      if (damaged) resyncedFrames++;
      offset = end;
    }
    discardedBytes += data.length - offset;
    recordCounts.set(segment, 0);
  }

  let current = (existing.at(-1) ?? 0) + 1;
  const openFile = options.openFile ?? ((file: string) => open(file, "a") as Promise<FileHandle>);
  const handles = new Map<number, WalFile>();
  /** Bytes of each open segment known to be whole frames on disk. */
  const sizes = new Map<number, number>();
  /** Segments that a failed write left with a torn tail: nothing more is written to them. */
  const sealed = new Set<number>();
  let queue: Pending[] = [];
  let writing: Promise<void> | undefined;
  let fsyncs = 0;
  let failures = 0;
  let dirSynced = true;

  const handleFor = async (segment: number): Promise<WalFile> => {
    let handle = handles.get(segment);
    if (!handle) {
      handle = await openFile(path.join(dir, fileName(segment)));
      try {
        sizes.set(segment, (await handle.stat()).size);
      } catch (err) {
        await handle.close().catch(() => undefined);
        throw err;
      }
      handles.set(segment, handle);
      dirSynced = false;
    }
    return handle;
  };

  /** After a failed write: cuts the segment back to its whole frames, or seals it and moves on to a new one. */
  const repair = async (segment: number) => {
    const handle = handles.get(segment);
    if (!handle) return;
    try {
      await handle.truncate(sizes.get(segment) ?? 0);
      await handle.datasync();
    } catch {
      sealed.add(segment);
      if (segment >= current) current = segment + 1;
      handles.delete(segment);
      await handle.close().catch(() => undefined);
    }
  };

  // One writer at a time drains the whole queue: a write + fsync per segment touched.
  const drain = async () => {
    while (queue.length > 0) {
      const batch = queue;
      queue = [];
      for (const p of batch) {
        if (!sealed.has(p.segment)) continue;
        move(p.segment, current, p.records);
        p.segment = current;
      }
      const touched = [...new Set(batch.map((p) => p.segment))];
      try {
        for (const segment of touched) {
          const handle = await handleFor(segment);
          const frames = batch.filter((p) => p.segment === segment).flatMap((p) => p.frame);
          await writeFully(handle, frames);
          await handle.datasync();
          fsyncs++;
          sizes.set(segment, (sizes.get(segment) ?? 0) + frames.reduce((n, f) => n + f.length, 0));
        }
        if (!dirSynced) {
          // The new segment's directory entry must survive a power cut too.
          const dirHandle = await open(dir, "r");
          await dirHandle.sync().finally(() => dirHandle.close());
          dirSynced = true;
        }
        for (const p of batch) p.done();
      } catch (err) {
        // None of the batch counts as logged: the segments go back to their whole frames.
        failures++;
        for (const segment of touched) await repair(segment);
        for (const p of batch) {
          move(p.segment, undefined, p.records);
          p.done(err as Error);
        }
      }
      for (const [segment, handle] of handles) {
        if (segment < current) {
          handles.delete(segment);
          await handle.close();
        }
      }
    }
  };
  /** Moves `records` of the record counts from one segment to another (or out of the log). */
  const move = (from: number, to: number | undefined, records: number) => {
    const left = (recordCounts.get(from) ?? 0) - records;
    if (recordCounts.has(from)) recordCounts.set(from, Math.max(0, left));
    if (to !== undefined) recordCounts.set(to, (recordCounts.get(to) ?? 0) + records);
  };
  const kick = () => {
    writing ??= drain().finally(() => {
      writing = undefined;
      if (queue.length > 0) kick();
    });
    return writing;
  };

  const wal: WriteAheadLog = {
    append(payload, records) {
      // The header goes out beside the payload (one write of both), which is not copied.
      const header = Buffer.allocUnsafe(HEADER);
      header.writeUInt32LE(payload.length, 0);
      header.writeUInt32LE(crc32(payload), 4);
      const frame = [header, payload];
      recordCounts.set(current, (recordCounts.get(current) ?? 0) + records);
      return new Promise<void>((resolve, reject) => {
        queue.push({ segment: current, frame, records, done: (err) => (err ? reject(err) : resolve()) });
        void kick();
      });
    },
    rotate() {
      current++;
      return current;
    },
    async truncateBefore(boundary) {
      // Counted as gone at once (their records are committed); the files go once their writes are done.
      const doomed = [...recordCounts.keys()].filter((s) => s < boundary);
      for (const segment of doomed) recordCounts.delete(segment);
      for (const segment of sealed) if (segment < boundary) sealed.delete(segment);
      while (writing || queue.some((p) => p.segment < boundary)) await (writing ?? kick());
      for (const segment of doomed) {
        const handle = handles.get(segment);
        handles.delete(segment);
        sizes.delete(segment);
        await handle?.close();
        await rm(path.join(dir, fileName(segment)), { force: true });
      }
    },
    stats() {
      let records = 0;
      for (const n of recordCounts.values()) records += n;
      return { segments: recordCounts.size, records, fsyncs, failures };
    },
    async close() {
      while (writing || queue.length > 0) await (writing ?? kick());
      for (const handle of handles.values()) await handle.close();
      handles.clear();
    },
  };
  const countReplayed = (records: number) => {
    // Replayed segments are all truncated together by the first flush, so one of them can carry the count.
    const first = existing[0];
    if (first !== undefined) recordCounts.set(first, records);
  };
  return { wal, replayed, discardedBytes, resyncedFrames, countReplayed };
}

/** Writes every byte of `buffers`, going on after a short write (the next attempt reports why it stopped). */
async function writeFully(handle: WalFile, buffers: Buffer[]): Promise<void> {
  let rest = buffers;
  while (rest.length > 0) {
    let written = (await handle.writev(rest)).bytesWritten;
    if (written === 0) throw new Error("write-ahead log: the disk took no bytes");
    while (rest.length > 0 && written >= rest[0]!.length) {
      written -= rest[0]!.length;
      rest = rest.slice(1);
    }
    if (written > 0) rest = [rest[0]!.subarray(written), ...rest.slice(1)];
  }
}

/** The end of the whole frame at `offset`, or undefined when none starts there (torn, corrupt, or empty). */
function frameEnd(data: Buffer, offset: number): number | undefined {
  if (offset + HEADER > data.length) return undefined;
  const length = data.readUInt32LE(offset);
  const end = offset + HEADER + length;
  // No append writes an empty payload, so a zero length is not a frame (zeroed space after a crash).
  if (length === 0 || end > data.length) return undefined;
  return crc32(data.subarray(offset + HEADER, end)) === data.readUInt32LE(offset + 4) ? end : undefined;
}

/** The first offset from `from` where a whole frame starts, or the end of the data. */
function nextFrame(data: Buffer, from: number): number {
  for (let offset = from; offset + HEADER <= data.length; offset++) if (frameEnd(data, offset) !== undefined) return offset;
  return data.length;
}

function fileName(segment: number): string {
  return `${String(segment).padStart(16, "0")}.wal`;
}
