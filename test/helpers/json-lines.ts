/**
 * Checks for log output: JSON.parse keeps the last of duplicate keys silently, so
 * duplicateKeys scans the text of a JSON value for keys repeated within one object.
 */

/** Keys that appear more than once in the same object of `json`, in order found. */
export function duplicateKeys(json: string): string[] {
  const stack: Array<{ keys: Set<string> | null; expectKey: boolean }> = [];
  const dups: string[] = [];
  for (let i = 0; i < json.length; i++) {
    const ch = json[i];
    if (ch === '"') {
      let j = i + 1;
      let text = '';
      while (j < json.length && json[j] !== '"') {
        if (json[j] === '\\') {
          text += json.slice(j, j + 2);
          j += 2;
        } else {
          text += json[j];
          j++;
        }
      }
      const top = stack[stack.length - 1];
      if (top?.keys && top.expectKey) {
        if (top.keys.has(text)) dups.push(text);
        top.keys.add(text);
        top.expectKey = false;
      }
      i = j;
    } else if (ch === '{') {
      stack.push({ keys: new Set(), expectKey: true });
    } else if (ch === '[') {
      stack.push({ keys: null, expectKey: false });
    } else if (ch === '}' || ch === ']') {
      stack.pop();
    } else if (ch === ',') {
      const top = stack[stack.length - 1];
      if (top?.keys) top.expectKey = true;
    }
  }
  return dups;
}

export interface LogLine {
  level: string;
  msg: string;
  [key: string]: unknown;
}

/**
 * Every non-empty line of `text` as a JSON object; throws naming the first line that is
 * not JSON or repeats a key.
 */
export function parseLogLines(text: string): LogLine[] {
  const out: LogLine[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new Error(`not a JSON line: ${line}`);
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new Error(`not a JSON object: ${line}`);
    }
    const dups = duplicateKeys(line);
    if (dups.length > 0) throw new Error(`duplicate keys ${dups.join(', ')} in: ${line}`);
    out.push(value as LogLine);
  }
  return out;
}
