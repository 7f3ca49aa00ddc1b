import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { open, rm, type FileHandle } from "node:fs/promises";
import path from "node:path";
import { crc32 } from "node:zlib";

/**
 * The write-ahead log: accepted records, appended as checksummed frames to numbered segment files
 * and fsync'd in groups (every append waiting at one moment shares one fsync). A flush rotates to a
 * new segment; once it commits, the segments before it are deleted. After a crash the frames left
 * are read back, up to the first torn or corrupt one of each segment (a frame cut short by the crash
 * was never acknowledged as logged).
 *
 * Frame: u32 payload length, u32 CRC-32 of the payload, payload (little-endian).
 */
export interface WriteAheadLog {
  /** Queues a frame holding `records` records in the current segment now; resolves once it is on disk. */
  append(payload: Buffer, records: number): Promise<void>;
  /** Starts a new segment for the frames that follow; returns its number (the boundary for truncateBefore). */
  rotate(): number;
  /** Deletes every segment numbered below `boundary` once its frames are written. */
  truncateBefore(boundary: number): Promise<void>;
  /** Segments, and records appended (or replayed) and not yet truncated. */
  stats(): { segments: number; records: number; fsyncs: number };
  /** Writes what is queued and closes the files. */
  close(): Promise<void>;
}

export interface OpenedWal {
  readonly wal: WriteAheadLog;
  /** Payloads found from an earlier run, in append order. */
  readonly replayed: Buffer[];
  /** Call once the replayed payloads are decoded: how many records they held (for stats()). */
  countReplayed(records: number): void;
  /** Bytes of torn or corrupt frames skipped during replay. */
  readonly discardedBytes: number;
}

const HEADER = 8;
const SEGMENT = /^(\d{16})\.wal$/;

interface Pending {
  readonly segment: number;
  readonly frame: Buffer;
  readonly done: (err?: Error) => void;
}

/** Opens (creating) the log in `dir` and reads back whatever an earlier run left there. */
export async function openWal(dir: string): Promise<OpenedWal> {
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
  for (const segment of existing) {
    const data = readFileSync(path.join(dir, fileName(segment)));
    let offset = 0;
    while (offset + HEADER <= data.length) {
      const length = data.readUInt32LE(offset);
      const checksum = data.readUInt32LE(offset + 4);
      const end = offset + HEADER + length;
      if (end > data.length) break;
      const payload = data.subarray(offset + HEADER, end);
      if (crc32(payload) !== checksum) break;
      replayed.push(Buffer.from(payload));
      offset = end;
    }
    discardedBytes += data.length - offset;
    recordCounts.set(segment, 0);
  }

  let current = (existing.at(-1) ?? 0) + 1;
  const handles = new Map<number, FileHandle>();
  let queue: Pending[] = [];
  let writing: Promise<void> | undefined;
  let fsyncs = 0;
  let dirSynced = true;

  const handleFor = async (segment: number): Promise<FileHandle> => {
    let handle = handles.get(segment);
    if (!handle) {
      handle = await open(path.join(dir, fileName(segment)), "a");
      handles.set(segment, handle);
      dirSynced = false;
    }
    return handle;
  };

  // One writer at a time drains the whole queue: a write + fsync per segment touched.
  const drain = async () => {
    while (queue.length > 0) {
      const batch = queue;
      queue = [];
      try {
        for (const segment of new Set(batch.map((p) => p.segment))) {
          const handle = await handleFor(segment);
          await handle.writev(batch.filter((p) => p.segment === segment).map((p) => p.frame));
          await handle.datasync();
          fsyncs++;
        }
        if (!dirSynced) {
          // The new segment's directory entry must survive a power cut too.
          const dirHandle = await open(dir, "r");
          await dirHandle.sync().finally(() => dirHandle.close());
          dirSynced = true;
        }
        for (const p of batch) p.done();
      } catch (err) {
        for (const p of batch) p.done(err as Error);
      }
      for (const [segment, handle] of handles) {
        if (segment < current) {
          handles.delete(segment);
          await handle.close();
        }
      }
    }
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
      const frame = Buffer.allocUnsafe(HEADER + payload.length);
      frame.writeUInt32LE(payload.length, 0);
      frame.writeUInt32LE(crc32(payload), 4);
      payload.copy(frame, HEADER);
      recordCounts.set(current, (recordCounts.get(current) ?? 0) + records);
      return new Promise<void>((resolve, reject) => {
        queue.push({ segment: current, frame, done: (err) => (err ? reject(err) : resolve()) });
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
      while (writing || queue.some((p) => p.segment < boundary)) await (writing ?? kick());
      for (const segment of doomed) {
        const handle = handles.get(segment);
        handles.delete(segment);
        await handle?.close();
        await rm(path.join(dir, fileName(segment)), { force: true });
      }
    },
    stats() {
      let records = 0;
      for (const n of recordCounts.values()) records += n;
      return { segments: recordCounts.size, records, fsyncs };
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
  return { wal, replayed, discardedBytes, countReplayed };
}

function fileName(segment: number): string {
  return `${String(segment).padStart(16, "0")}.wal`;
}
