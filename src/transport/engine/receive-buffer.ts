/**
 * The receive side of the byte stream: reassembles out-of-order stream frames, hands
 * contiguous bytes to the reader, and computes the flow-control window (the peer may
 * send up to consumed + window). Bounded: bytes beyond the advertised limit are refused.
 */
export class ReceiveBuffer {
  /** Next byte the reader will get. */
  private readOffset = 0;
  /** Contiguous bytes received (start of the first gap). */
  private contiguous = 0;
  private readonly ready: Buffer[] = [];
  private readyHead = 0;
  /** Out-of-order chunks sorted by offset. */
  private readonly pending: { offset: number; data: Buffer }[] = [];
  private pendingBytes = 0;
  finOffset = -1;
  /** Limit advertised to the peer. */
  maxData: number;

  constructor(private readonly window: number) {
    this.maxData = window;
  }

  /** Accepts a stream frame; 'ok', 'duplicate' or 'flow_control' (beyond the window). */
  onFrame(offset: number, data: Buffer, fin: boolean): 'ok' | 'duplicate' | 'flow_control' {
    const end = offset + data.length;
    if (end > this.maxData) return 'flow_control';
    if (fin) {
      if (this.finOffset >= 0 && this.finOffset !== end) return 'flow_control';
      this.finOffset = end;
    }
    if (end <= this.contiguous) return data.length === 0 ? 'ok' : 'duplicate';
    if (offset <= this.contiguous) {
      this.ready.push(data.subarray(this.contiguous - offset));
      this.contiguous = end;
      this.drainPending();
      return 'ok';
    }
    // insert sorted; an exact duplicate is dropped
    const p = this.pending;
    let i = p.length;
    while (i > 0 && p[i - 1].offset > offset) i--;
    if (i > 0 && p[i - 1].offset === offset && p[i - 1].data.length >= data.length) {
      return 'duplicate';
    }
    p.splice(i, 0, { offset, data });
    this.pendingBytes += data.length;
    return 'ok';
  }

  private drainPending(): void {
    const p = this.pending;
    let k = 0;
    while (k < p.length && p[k].offset <= this.contiguous) {
      const { offset, data } = p[k];
      const end = offset + data.length;
      if (end > this.contiguous) {
        this.ready.push(data.subarray(this.contiguous - offset));
        this.contiguous = end;
      }
      this.pendingBytes -= data.length;
      k++;
    }
    if (k > 0) p.splice(0, k);
  }

  /** Next contiguous chunk for the reader, or null. Advances the consumed offset. */
  read(): Buffer | null {
    if (this.readyHead >= this.ready.length) return null;
    const c = this.ready[this.readyHead];
    this.ready[this.readyHead++] = EMPTY;
    if (this.readyHead === this.ready.length) {
      this.ready.length = 0;
      this.readyHead = 0;
    }
    this.readOffset += c.length;
    return c;
  }

  readableBytes(): number {
    return this.contiguous - this.readOffset;
  }

  /** All bytes up to the FIN were received. */
  finReceived(): boolean {
    return this.finOffset >= 0 && this.contiguous === this.finOffset;
  }

  /** The reader has consumed everything up to the FIN. */
  finRead(): boolean {
    return this.finOffset >= 0 && this.readOffset === this.finOffset;
  }

  receivedOffset(): number {
    return this.contiguous;
  }

  bufferedBytes(): number {
    return this.contiguous - this.readOffset + this.pendingBytes;
  }

  /**
   * A new limit to advertise when the reader freed half the window (RFC 9000 §4.2 leaves
   * the policy open), else -1.
   */
  windowUpdate(): number {
    if (this.finOffset >= 0) return -1;
    if (this.maxData - this.readOffset <= this.window / 2) {
      this.maxData = this.readOffset + this.window;
      return this.maxData;
    }
    return -1;
  }
}

const EMPTY = Buffer.alloc(0);
