import { MAX_TIME_SECONDS } from "./fields.js";

/**
 * The few protobuf wire reads a record decoder needs, over a Buffer and without allocating per field
 * (protobuf-es's BinaryReader returns each tag as an array and each string through TextDecoder, and
 * widens every int64 to a BigInt). Anything unusual — bytes past the end, a group, a varint too
 * long, text that is not UTF-8 — throws NOT_FAST: the caller then hands the record to protobuf-es,
 * which decodes it or refuses it with its own message.
 */
export class WireCursor {
  pos = 0;
  end = 0;
  private buf: Buffer = EMPTY;
  private memory: ArrayBufferLike = EMPTY.buffer;

  /** Starts reading `bytes`, through one view of the memory they are in (records of one request share it). */
  reset(bytes: Uint8Array): void {
    if (bytes.buffer !== this.memory) {
      this.memory = bytes.buffer;
      this.buf = Buffer.from(bytes.buffer);
    }
    this.pos = bytes.byteOffset;
    this.end = bytes.byteOffset + bytes.byteLength;
  }

  /** An unsigned varint as a number: exact below 2^53, which is all a record's fields need. */
  varint(): number {
    const buf = this.buf;
    let pos = this.pos;
    if (pos >= this.end) throw NOT_FAST;
    let b = buf[pos++]!;
    if (b < 0x80) {
      this.pos = pos;
      return b;
    }
    let value = b & 0x7f;
    let scale = 128;
    for (let i = 1; i < 10; i++) {
      if (pos >= this.end) throw NOT_FAST;
      b = buf[pos++]!;
      value += (b & 0x7f) * scale;
      if (b < 0x80) {
        this.pos = pos;
        return value;
      }
      scale *= 128;
    }
    throw NOT_FAST;
  }

  /** A field's tag: field number × 8 + wire type. */
  tag(): number {
    if (this.pos >= this.end) throw NOT_FAST;
    const tag = this.varint();
    if (tag > 0xffffffff || tag >>> 3 === 0) throw NOT_FAST;
    return tag;
  }

  /** An int32 or enum: the low 32 bits of its varint, signed (negative values take ten bytes). */
  int32(): number {
    const buf = this.buf;
    let pos = this.pos;
    let lo = 0;
    for (let i = 0; i < 10; i++) {
      if (pos >= this.end) throw NOT_FAST;
      const b = buf[pos++]!;
      if (i < 5) lo |= (b & 0x7f) << (7 * i);
      if (b < 0x80) {
        this.pos = pos;
        return lo | 0;
      }
    }
    throw NOT_FAST;
  }

  double(): number {
    if (this.pos + 8 > this.end) throw NOT_FAST;
    const value = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return value;
  }

  /** Where a length-delimited field that starts here ends (the cursor moves past its length). */
  delimited(): number {
    const length = this.varint();
    const end = this.pos + length;
    if (end > this.end) throw NOT_FAST;
    return end;
  }

  /** A string field, which must be UTF-8. */
  string(): string {
    const end = this.delimited();
    const text = this.buf.toString("utf8", this.pos, end);
    this.pos = end;
    // Node replaces malformed sequences with U+FFFD; protobuf-es refuses them. A genuine U+FFFD in the
    // text also lands here, and protobuf-es then decodes the record as it is.
    if (text.includes("\uFFFD")) throw NOT_FAST;
    return text;
  }

  /** Skips a field of `wireType` (groups are left to protobuf-es). */
  skip(wireType: number): void {
    switch (wireType) {
      case 0:
        this.varint();
        return;
      case 1:
        this.pos += 8;
        break;
      case 2:
        this.pos = this.delimited();
        return;
      case 5:
        this.pos += 4;
        break;
      default:
        throw NOT_FAST;
    }
    if (this.pos > this.end) throw NOT_FAST;
  }

  /**
   * A google.protobuf.Timestamp field as µs since the epoch, or NaN when it is outside 1970-9999 (a
   * negative `seconds` arrives as a ten-byte varint above the range, a negative `nanos` as an int32).
   */
  timestampMicros(): number {
    const end = this.delimited();
    const outer = this.end;
    this.end = end;
    let seconds = 0;
    let nanos = 0;
    while (this.pos < end) {
      const tag = this.tag();
      if (tag === (1 << 3)) seconds = this.varint();
      else if (tag === (2 << 3)) nanos = this.int32();
      else this.skip(tag & 7);
    }
    this.end = outer;
    if (seconds > MAX_TIME_SECONDS || nanos < 0 || nanos > 999_999_999) return Number.NaN;
    return seconds * 1_000_000 + Math.floor(nanos / 1000);
  }
}

/** Thrown when a record needs protobuf-es (see WireCursor). */
export const NOT_FAST: unique symbol = Symbol("not fast");

const EMPTY = Buffer.alloc(0);
