/** A benchmark's progress lines on stderr, `[name HH:MM:SS] text` (stdout is for results). */
export function benchLogger(name: string): (s: string) => void {
  return s => console.error(`[${name} ${new Date().toISOString().slice(11, 19)}] ${s}`);
}
