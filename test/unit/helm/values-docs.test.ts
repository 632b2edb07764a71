/**
 * values.yaml and values.schema.json describe the same settings: every option the schema
 * accepts appears in values.yaml, and every option in values.yaml has a comment (a group
 * key, like `image`, is documented by its members; the contents of free-form values,
 * like `resources`, are examples and need none). Pure file reading, no helm.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Node } from 'yaml';
import { isMap, parseDocument } from 'yaml';

const CHART = resolve(__dirname, '../../../../helm/meshwire');

interface SchemaNode {
  type?: string | string[];
  properties?: Record<string, SchemaNode>;
  additionalProperties?: boolean | SchemaNode;
  $ref?: string;
}

const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8')) as SchemaNode;
const values = parseDocument(readFileSync(join(CHART, 'values.yaml'), 'utf8'));

/** A structured object of the schema: named properties, nothing else allowed. */
function structured(
  node: SchemaNode | undefined
): node is SchemaNode & { properties: Record<string, SchemaNode> } {
  return !!node?.properties && node.additionalProperties === false;
}

interface Finding {
  undocumented: string[];
  notInSchema: string[];
}

function walk(
  map: Node | null,
  sch: SchemaNode,
  path: string,
  out: Finding,
  mapComment?: string
): void {
  if (!isMap(map) || !structured(sch)) return;
  map.items.forEach((pair, i) => {
    const key = String((pair.key as { value: unknown }).value);
    const here = path ? `${path}.${key}` : key;
    const child = sch.properties[key];
    if (!child) {
      out.notInSchema.push(here);
      return;
    }
    // yaml puts the comment above a map's first key on the map itself.
    const comment = (pair.key as Node).commentBefore ?? (i === 0 ? mapComment : undefined);
    const value = pair.value as Node | null;
    if (structured(child) && isMap(value)) {
      walk(value, child, here, out, value.commentBefore ?? undefined);
    } else if (!comment || !comment.trim()) {
      out.undocumented.push(here);
    }
  });
}

test('every values.yaml option has a comment and is in the schema', t => {
  const out: Finding = { undocumented: [], notInSchema: [] };
  walk(values.contents, schema, '', out, values.commentBefore ?? undefined);
  t.deepEqual(out.notInSchema, []);
  t.deepEqual(out.undocumented, []);
});

test('every option of the schema is present in values.yaml', t => {
  const missing: string[] = [];
  const visit = (sch: SchemaNode, obj: unknown, path: string): void => {
    if (!structured(sch)) return;
    for (const [key, child] of Object.entries(sch.properties)) {
      if (key === 'global') continue; // Helm's own, for use as a subchart
      const here = path ? `${path}.${key}` : key;
      const rec = obj as Record<string, unknown> | null;
      if (!rec || !(key in rec)) missing.push(here);
      else visit(child, rec[key], here);
    }
  };
  visit(schema, values.toJS(), '');
  t.deepEqual(missing, []);
});

test('the documentation check notices an undocumented option', t => {
  const doc = parseDocument('# -- documented\na: 1\nb: 2\ngroup:\n  # -- x\n  x: 1\n  y: 2\n');
  const sch: SchemaNode = {
    properties: {
      a: {},
      b: {},
      group: { properties: { x: {}, y: {} }, additionalProperties: false },
    },
    additionalProperties: false,
  };
  const out: Finding = { undocumented: [], notInSchema: [] };
  walk(doc.contents, sch, '', out, doc.commentBefore ?? undefined);
  t.deepEqual(out.undocumented, ['b', 'group.y']);
});
