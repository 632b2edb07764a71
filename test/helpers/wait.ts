/**
 * How tests wait for something to happen: poll a condition (on the events, state or metrics
 * of what runs) until it holds; a timeout names what was awaited, and what was seen instead
 * when `seen` is given. Tests synchronise with this, not with sleeps.
 */

/** How often the condition is looked at: short next to any timeout, long next to a check. */
const POLL_MS = 5;

export async function waitFor(
  what: string,
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
  /** What was there instead, for the timeout error. */
  seen?: () => string
): Promise<void> {
  const start = Date.now();
  for (;;) {
    if (await cond()) return;
    if (Date.now() - start > timeoutMs) {
      const instead = seen ? `; ${seen()}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${instead}`);
    }
    await new Promise(r => setTimeout(r, POLL_MS));
  }
}
