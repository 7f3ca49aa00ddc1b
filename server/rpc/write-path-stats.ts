import type { BatcherStatus } from "../core/write-batcher.js";

/** The write batcher's figures as the contract's WritePathStats carries them. */
export function writePathStats(s: BatcherStatus) {
  return {
    bufferRecords: BigInt(s.bufferRecords),
    bufferBytes: BigInt(s.bufferBytes),
    oldestUnflushedAgeMs: BigInt(Math.round(s.oldestAgeMs)),
    flushes: BigInt(s.flushes),
    recordsWritten: BigInt(s.recordsWritten),
    deadLetters: BigInt(s.deadLetters),
    retries: BigInt(s.retries),
    statements: BigInt(s.statements),
    name: s.name,
  };
}
