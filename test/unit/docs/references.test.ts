/**
 * The project stands alone: its docs, comments, Makefile, scripts and chart cite only
 * files inside the repository. Every `docs/<name>.md` or `proto/...`/`scripts/...` path
 * they name exists, every relative Markdown link resolves, and every section of
 * docs/design.md cited by name (`docs/design.md, "Layers"`) is a heading there. Pure file
 * reading.
 */
import test from 'ava';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const ROOT = resolve(__dirname, '../../../..');
const SKIP = new Set(['node_modules', 'dist', '.git', '.tools', 'build', 'results', 'fixtures']);

function files(dir: string): string[] {
  return readdirSync(dir).flatMap(name => {
    if (SKIP.has(name)) return [];
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return files(p);
    return /\.(ts|js|md|sh|tpl|txt|yaml|json)$|^Makefile$|^Dockerfile$/.test(name) ? [p] : [];
  });
}

const sources = [
  ...files(join(ROOT, 'src')),
  ...files(join(ROOT, 'docs')),
  ...files(join(ROOT, 'scripts')),
  ...files(join(ROOT, 'helm')),
  ...files(join(ROOT, 'test')),
  ...files(join(ROOT, 'bench')),
  join(ROOT, 'README.md'),
  join(ROOT, 'Makefile'),
  join(ROOT, 'Dockerfile'),
  // This file names bad references on purpose (its self-check below).
].filter(f => existsSync(f) && !f.endsWith(join('test', 'unit', 'docs', 'references.test.ts')));

/** Headings of docs/design.md, without the leading #s. */
function designSections(): Set<string> {
  const text = readFileSync(join(ROOT, 'docs/design.md'), 'utf8');
  return new Set([...text.matchAll(/^#{1,6} (.+)$/gm)].map(m => (m[1] as string).trim()));
}

/**
 * The team's own design reference, which users of the project do not have. Spelled in
 * parts so that this check does not itself cite it.
 */
const OUTSIDE_DESIGN_DOC = ['DESIGN', 'md'].join('.');
const OUTSIDE_DESIGN_DOC_RE = new RegExp(OUTSIDE_DESIGN_DOC.replace('.', '\\.'));

/** Problems in one file's text (`file` only names it in the messages). */
function check(file: string, text: string, sections: Set<string>): string[] {
  const out: string[] = [];
  const rel = relative(ROOT, file);
  if (OUTSIDE_DESIGN_DOC_RE.test(text))
    out.push(`${rel}: cites ${OUTSIDE_DESIGN_DOC}, which is not in the repository`);
  // the team's design seeds and style notes live outside the project
  if (/\b[Ss]eed 00\d\b|STYLE(\.md| lesson)/.test(text))
    out.push(`${rel}: cites a seed document or style note, which are not in the repository`);
  for (const m of text.matchAll(/\bdocs\/([A-Za-z0-9_-]+\.md)\b/g)) {
    if (!existsSync(join(ROOT, 'docs', m[1] as string)))
      out.push(`${rel}: docs/${m[1]} is missing`);
  }
  for (const m of text.matchAll(/docs\/design\.md,? "([^"]+)"/g)) {
    if (!sections.has(m[1] as string)) {
      out.push(`${rel}: docs/design.md has no section "${m[1]}"`);
    }
  }
  if (file.endsWith('.md')) {
    for (const m of text.matchAll(/\]\(([^)#\s]+)(#[^)\s]*)?\)/g)) {
      const target = m[1] as string;
      if (/^[a-z]+:/.test(target)) continue; // URLs
      if (!existsSync(resolve(dirname(file), target)))
        out.push(`${rel}: link ${target} is missing`);
    }
  }
  return out;
}

test('docs, comments, Makefile, scripts and chart cite only files that exist, and design.md sections by their real names', t => {
  const sections = designSections();
  t.true(sections.has('Delivery guarantees'));
  const problems = sources.flatMap(f => check(f, readFileSync(f, 'utf8'), sections));
  t.deepEqual(problems, []);
});

test('README links the Delivery guarantees section of docs/design.md', t => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  t.regex(readme, /\]\(docs\/design\.md#delivery-guarantees\)/);
});

test('the reference check notices the outside design doc, a missing doc, a missing section and a broken link', t => {
  const sections = new Set(['Layers']);
  const problems = check(
    join(ROOT, 'docs/x.md'),
    `see ${OUTSIDE_DESIGN_DOC} section 3, seed 003, docs/nowhere.md, docs/design.md, "Nope", docs/design.md, "Layers", [a](./missing.md), [b](https://example.com/x.md)`,
    sections
  );
  t.deepEqual(problems, [
    `docs/x.md: cites ${OUTSIDE_DESIGN_DOC}, which is not in the repository`,
    'docs/x.md: cites a seed document or style note, which are not in the repository',
    'docs/x.md: docs/nowhere.md is missing',
    'docs/x.md: docs/design.md has no section "Nope"',
    'docs/x.md: link ./missing.md is missing',
  ]);
});
