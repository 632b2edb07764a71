/**
 * The send side of the byte stream: bytes written by the application until acknowledged,
 * the next new offset to send, ranges to retransmit, and acknowledged ranges. Lost data
 * goes out again in new packets (packet numbers are never reused).
 */
import { RangeSet } from './range-set';

export class SendBuffer {
  private readonly chunks: Buffer[] = [];
  private readonly starts: number[] = [];
  private head = 0;
  /** Total bytes written by the application. */
  writeOffset = 0;
  /** Next never-sent byte. */
  sentOffset = 0;
  /** All bytes below are acknowledged and released. */
  ackedOffset = 0;
  private readonly acked = new RangeSet();
  /** Pending retransmissions as [offset, end) pairs, FIFO. */
  private readonly retransmit: number[] = [];
  private retransmitHead = 0;
  /** Stream end offset once the application called finish(). */
  finOffset = -1;
  finSent = false;
  finAcked = false;
  /** FIN must be (re)sent even with no data (lost FIN-only frame). */
  finPending = false;

  write(data: Buffer): void {
    if (this.finOffset >= 0) throw new Error('write after finish');
    if (data.length === 0) return;
    this.chunks.push(data);
    this.starts.push(this.writeOffset);
    this.writeOffset += data.length;
  }

  finish(): void {
    if (this.finOffset < 0) {
      this.finOffset = this.writeOffset;
      this.finPending = true;
    }
  }

  /** Unacknowledged bytes held (application backpressure is based on this). */
  bufferedBytes(): number {
    return this.writeOffset - this.ackedOffset;
  }

  hasRetransmit(): boolean {
    return this.retransmitHead < this.retransmit.length;
  }

  /** True when nothing written is left unacknowledged (including the FIN if finished). */
  allAcked(): boolean {
    return this.ackedOffset === this.writeOffset && (this.finOffset < 0 || this.finAcked);
  }

  /** True when there is data (or a FIN) never sent or waiting for retransmission. */
  hasPending(peerMaxData: number): boolean {
    return (
      this.hasRetransmit() ||
      (this.sentOffset < this.writeOffset && this.sentOffset < peerMaxData) ||
      (this.finPending && this.sentOffset === this.writeOffset)
    );
  }

  /**
   * Takes the next range to send, at most `maxLen` bytes: retransmissions first, then new
   * bytes below `peerMaxData`. Writes it into `out` as [offset, len, fin, retransmit]; false when none.
   */
  next(maxLen: number, peerMaxData: number, out: number[]): boolean {
    while (this.retransmitHead < this.retransmit.length) {
      let s = this.retransmit[this.retransmitHead];
      const e = this.retransmit[this.retransmitHead + 1];
      // skip parts acknowledged meanwhile (a spurious loss or an earlier copy arrived)
      if (s < this.ackedOffset) s = this.ackedOffset;
      while (s < e && this.acked.contains(s)) s = this.acked.contiguousEnd(s);
      if (s >= e) {
        this.retransmitHead += 2;
        continue;
      }
      const len = Math.min(maxLen, e - s);
      if (s + len >= e) this.retransmitHead += 2;
      else this.retransmit[this.retransmitHead] = s + len;
      out[0] = s;
      out[1] = len;
      out[2] = this.finOffset === s + len && !this.finAcked ? 1 : 0;
      out[3] = 1;
      if (this.retransmitHead === this.retransmit.length) {
        this.retransmit.length = 0;
        this.retransmitHead = 0;
      }
      return true;
    }
    const limit = Math.min(this.writeOffset, peerMaxData);
    if (this.sentOffset < limit) {
      const s = this.sentOffset;
      const len = Math.min(maxLen, limit - s);
      this.sentOffset += len;
      const fin = this.finOffset === this.sentOffset;
      if (fin) {
        this.finSent = true;
        this.finPending = false;
      }
      out[0] = s;
      out[1] = len;
      out[2] = fin ? 1 : 0;
      out[3] = 0;
      return true;
    }
    if (this.finPending && this.sentOffset === this.writeOffset) {
      this.finPending = false;
      this.finSent = true;
      out[0] = this.sentOffset;
      out[1] = 0;
      out[2] = 1;
      out[3] = 0;
      return true;
    }
    return false;
  }

  /** Copies stream bytes [offset, offset+len) into `dst` at `at`. */
  copyOut(offset: number, len: number, dst: Buffer, at: number): void {
    // find the chunk containing offset (binary search over live chunks)
    let lo = this.head;
    let hi = this.chunks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    let i = lo;
    let remaining = len;
    let pos = offset;
    while (remaining > 0) {
      const c = this.chunks[i];
      const within = pos - this.starts[i];
      const n = Math.min(remaining, c.length - within);
      c.copy(dst, at, within, within + n);
      at += n;
      pos += n;
      remaining -= n;
      i++;
    }
  }

  onAcked(offset: number, len: number, fin: boolean): void {
    if (fin) this.finAcked = true;
    if (len === 0) return;
    this.acked.add(offset, offset + len);
    const end = this.acked.contiguousEnd(this.ackedOffset);
    if (end > this.ackedOffset) {
      this.ackedOffset = end;
      this.acked.removeBelow(end);
      this.release();
    }
  }

  onLost(offset: number, len: number, fin: boolean): void {
    if (fin && !this.finAcked && len === 0) this.finPending = true;
    if (len === 0) return;
    if (offset + len <= this.ackedOffset || this.acked.containsRange(offset, offset + len)) {
      if (fin && !this.finAcked) this.finPending = true;
      return;
    }
    this.retransmit.push(offset, offset + len);
  }

  private release(): void {
    while (
      this.head < this.chunks.length &&
      this.starts[this.head] + this.chunks[this.head].length <= this.ackedOffset
    ) {
      this.head++;
    }
    if (this.head > 64 && this.head * 2 > this.chunks.length) {
      this.chunks.splice(0, this.head);
      this.starts.splice(0, this.head);
      this.head = 0;
    }
  }
}
