/**
 * The batched UDP driver: a DatagramSocket over meshwire's native addon (native/udp_batch.c),
 * which moves datagrams with recvmmsg/sendmmsg from Node's own event loop.
 *
 * node:dgram pays a syscall, a JS callback, a Buffer and an rinfo object per datagram;
 * here a whole batch costs one syscall and one call each way. Sends made during one run
 * of JavaScript (a packetizer run, the ACKs of a receive batch) leave in one sendmmsg at
 * the end of the turn, in a microtask (flush policy, src/common/flush-policy.ts). The
 * send queue is bounded: when the kernel buffer is full the queue waits for writability,
 * and a datagram that finds it full is dropped and counted (datagrams may be lost
 * anyway; the transport retransmits).
 *
 * The addon is built by `make build` (build/udp_batch.node). When it is missing, `auto`
 * falls back to node:dgram (UdpDriver).
 */
import { InvalidArgumentError } from '../../common';
import type { DatagramSocket, DriverStats, RemoteInfo } from './datagram-socket';
import { loadNativeAddon, nativeAddonError } from './native-addon';

/**
 * Datagrams per receive batch (one recvmmsg) and send slots (the bounded send queue, one
 * sendmmsg), fewer for large datagrams so a socket's slot memory stays near 1 MiB + 4 MiB.
 */
const MAX_RECEIVE_SLOTS = 64;
const MAX_SEND_SLOTS = 256;
const RECEIVE_AREA_BYTES = 1024 * 1024;
const SEND_AREA_BYTES = 4 * 1024 * 1024;
const slotsFor = (area: number, slotBytes: number, max: number): number =>
  Math.max(8, Math.min(max, Math.floor(area / slotBytes)));
const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;
/** Destinations whose sockaddr is kept ready; cleared when full (peers are few). */
const MAX_CACHED_DESTINATIONS = 1024;
const AF_INET = 2;

type Handle = object;
/** native/udp_batch.c's exports (see its header for the contract). */
export interface UdpBatchAddon {
  META_BYTES: number;
  open(
    ipv6: boolean,
    address: string,
    port: number,
    sockBufBytes: number,
    recvData: Buffer,
    recvMeta: Buffer,
    slotBytes: number,
    sendData: Buffer,
    sendMeta: Buffer,
    sendSlotBytes: number,
    counters: Float64Array,
    onReceive: (count: number) => void,
    onWritable: () => void
  ): Handle;
  localAddress(h: Handle): [string, number];
  startReceive(h: Handle): void;
  send(h: Handle, start: number, end: number): number;
  awaitWritable(h: Handle): void;
  close(h: Handle, onClosed?: () => void): void;
  pton(address: string, port: number, ipv6Socket: boolean): Buffer | null;
  ntop(meta: Buffer, offset: number): string;
}

const ADDON = 'udp_batch';

export function batchDriverAvailable(): boolean {
  return loadNativeAddon<UdpBatchAddon>(ADDON) !== null;
}

export function batchDriverUnavailableReason(): string {
  return nativeAddonError(ADDON);
}

export class BatchUdpDriver implements DatagramSocket {
  readonly kind = 'batch';
  private handler: ((msg: Buffer, from: RemoteInfo) => void) | null = null;
  private closed = false;
  private closing: Promise<void> | null = null;
  /** Written by the addon (native/udp_batch.c): errors, truncations, calls, GSO datagrams. */
  private readonly counters = new Float64Array(6);
  private readonly recvData: Buffer;
  private readonly recvMeta: Buffer;
  private readonly sendData: Buffer;
  private readonly sendMeta: Buffer;
  private readonly handle: Handle;
  private readonly sendSlots: number;
  private readonly destinations = new Map<string, Buffer>();
  /** The last destination: datagrams go out in runs to one peer (no key string per send). */
  private lastDestAddress = '';
  private lastDestPort = -1;
  private lastDest: Buffer | null = null;
  /** Send slots [sent, queued) wait for the next flush. */
  private queued = 0;
  private sent = 0;
  private flushQueued = false;
  /** The kernel refused more (EAGAIN): wait for writability before the next flush. */
  private blocked = false;
  private queueDrops = 0;
  private unresolvable = 0;
  /** The last sender: its sockaddr words (family|port, then the address) and RemoteInfo. */
  private readonly lastSender = new Int32Array(5).fill(-1);
  private lastFrom: RemoteInfo = { address: '', port: 0 };

  private constructor(
    private readonly native: UdpBatchAddon,
    private readonly ipv6: boolean,
    host: string,
    port: number,
    private readonly slotBytes: number
  ) {
    const meta = native.META_BYTES;
    const receiveSlots = slotsFor(RECEIVE_AREA_BYTES, slotBytes, MAX_RECEIVE_SLOTS);
    this.sendSlots = slotsFor(SEND_AREA_BYTES, slotBytes, MAX_SEND_SLOTS);
    this.recvData = Buffer.allocUnsafeSlow(receiveSlots * slotBytes);
    this.recvMeta = Buffer.alloc(receiveSlots * meta);
    this.sendData = Buffer.allocUnsafeSlow(this.sendSlots * slotBytes);
    this.sendMeta = Buffer.alloc(this.sendSlots * meta);
    this.handle = native.open(
      ipv6,
      host,
      port,
      SOCKET_BUFFER_BYTES,
      this.recvData,
      this.recvMeta,
      slotBytes,
      this.sendData,
      this.sendMeta,
      slotBytes,
      this.counters,
      count => this.onBatch(count),
      () => {
        this.blocked = false;
        this.flush();
      }
    );
  }

  /**
   * Binds host:port (an IP literal). `maxDatagramSize` is the largest datagram sent or
   * accepted; a larger one arrives truncated to maxDatagramSize + 1 bytes, so the
   * transport sees it is oversized.
   */
  static bind(host: string, port: number, maxDatagramSize: number): Promise<BatchUdpDriver> {
    const native = loadNativeAddon<UdpBatchAddon>(ADDON);
    if (!native) return Promise.reject(new InvalidArgumentError(nativeAddonError(ADDON)));
    return BatchUdpDriver.over(native, host, port, maxDatagramSize);
  }

  /** @internal bind() over a given addon: tests drive the queue with a stand-in. */
  static over(
    native: UdpBatchAddon,
    host: string,
    port: number,
    maxDatagramSize: number
  ): Promise<BatchUdpDriver> {
    try {
      const d = new BatchUdpDriver(native, host.includes(':'), host, port, maxDatagramSize + 1);
      native.startReceive(d.handle);
      return Promise.resolve(d);
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  send(parts: Buffer[], port: number, address: string): void {
    if (this.closed) return;
    if (this.queued === this.sendSlots) {
      this.queueDrops++;
      return;
    }
    const dest = this.destination(address, port);
    if (!dest) {
      this.unresolvable++;
      return;
    }
    const slot = this.queued;
    let pos = slot * this.slotBytes;
    const end = pos + this.slotBytes - 1; // the spare byte is for receive truncation only
    // TypedArray#set, not Buffer#copy: the same bytes without a call into C++ per part
    for (const p of parts) {
      if (pos + p.length > end) {
        this.unresolvable++; // larger than maxDatagramSize: a caller bug, never sent
        return;
      }
      this.sendData.set(p, pos);
      pos += p.length;
    }
    const m = slot * this.native.META_BYTES;
    // the whole record (pton gives META_BYTES); its length field is written next
    this.sendMeta.set(dest, m);
    this.sendMeta.writeUInt32LE(pos - slot * this.slotBytes, m + 28);
    this.queued++;
    if (!this.flushQueued && !this.blocked) {
      this.flushQueued = true;
      queueMicrotask(this.flushTask);
    }
  }

  private readonly flushTask = (): void => {
    this.flushQueued = false;
    this.flush();
  };

  private flush(): void {
    if (this.blocked || this.closed || this.sent === this.queued) return;
    const next = this.native.send(this.handle, this.sent, this.queued);
    if (next < this.queued) {
      this.sent = next;
      this.blocked = true;
      this.native.awaitWritable(this.handle);
    } else {
      this.sent = this.queued = 0;
    }
  }

  private destination(address: string, port: number): Buffer | null {
    if (port === this.lastDestPort && address === this.lastDestAddress) return this.lastDest;
    const dest = this.resolve(address, port);
    if (dest) {
      this.lastDestAddress = address;
      this.lastDestPort = port;
      this.lastDest = dest;
    }
    return dest;
  }

  private resolve(address: string, port: number): Buffer | null {
    const key = `${address}|${port}`;
    let dest = this.destinations.get(key);
    if (!dest) {
      const sa = this.native.pton(address, port, this.ipv6);
      if (!sa) return null;
      if (this.destinations.size >= MAX_CACHED_DESTINATIONS) this.destinations.clear();
      this.destinations.set(key, sa);
      dest = sa;
    }
    return dest;
  }

  private onBatch(count: number): void {
    const meta = this.recvMeta;
    const stride = this.native.META_BYTES;
    for (let i = 0; i < count; i++) {
      const m = i * stride;
      const len = meta.readUInt32LE(m + 28);
      const start = i * this.slotBytes;
      // a copy: the slot is reused by the next batch, and the transport keeps stream data
      const msg = Buffer.allocUnsafe(len);
      this.recvData.copy(msg, 0, start, start + len);
      this.handler?.(msg, this.remoteAt(m));
      if (this.closed) return;
    }
  }

  /**
   * The sender of the datagram whose metadata is at `m`. Datagrams come in runs from one
   * peer: its RemoteInfo is reused while the sockaddr words match (the metadata is in host
   * byte order, little-endian on every platform we build for).
   */
  private remoteAt(m: number): RemoteInfo {
    const meta = this.recvMeta;
    const last = this.lastSender;
    const head = meta.readInt32LE(m); // family and port
    const v4 = meta.readUInt16LE(m) === AF_INET;
    // IPv4: the address at 4; IPv6: the 16 bytes at 8
    const a0 = meta.readInt32LE(v4 ? m + 4 : m + 8);
    const a1 = v4 ? 0 : meta.readInt32LE(m + 12);
    const a2 = v4 ? 0 : meta.readInt32LE(m + 16);
    const a3 = v4 ? 0 : meta.readInt32LE(m + 20);
    if (head === last[0] && a0 === last[1] && a1 === last[2] && a2 === last[3] && a3 === last[4]) {
      return this.lastFrom;
    }
    last[0] = head;
    last[1] = a0;
    last[2] = a1;
    last[3] = a2;
    last[4] = a3;
    this.lastFrom = { address: this.native.ntop(meta, m), port: meta.readUInt16BE(m + 2) };
    return this.lastFrom;
  }

  onMessage(handler: (msg: Buffer, from: RemoteInfo) => void): void {
    this.handler = handler;
  }

  address(): { host: string; port: number } {
    const [host, port] = this.native.localAddress(this.handle);
    return { host, port };
  }

  stats(): DriverStats {
    return {
      sendErrors: this.counters[0] + this.unresolvable,
      sendQueueFull: this.queueDrops,
      receiveErrors: this.counters[1],
      receiveTruncated: this.counters[2],
      sendCalls: this.counters[3],
      receiveCalls: this.counters[4],
      gsoDatagrams: this.counters[5],
    };
  }

  /** Resolves once the port is free again. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    // the last datagrams (CLOSE frames that tell peers we are gone) leave first
    this.flush();
    this.closed = true;
    this.closing = new Promise(resolve => this.native.close(this.handle, resolve));
    return this.closing;
  }
}
