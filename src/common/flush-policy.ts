/**
 * The flush policy: when bytes handed to a layer leave it. One policy for the four places
 * a Send crosses on its way to the wire (dispatch `src/dispatch/peer-link.ts`, the mux
 * `src/mux/mux-writer.ts`, the socket `src/transport/socket-scheduler.ts` and the batch
 * UDP driver `src/transport/drivers/batch-udp-driver.ts`). Each of them cites this
 * comment instead of arguing its own. `docs/design.md` ("Flush policy") says the same.
 *
 * Three moments, cheapest latency first:
 *
 * 1. **Same turn** (synchronously, inside the call): a lone message on an idle path.
 *    The socket packetizes and sends the first write of a run of JavaScript on an
 *    established connection inside write(): a lone request does not wait behind the
 *    microtasks queued before it.
 *
 * 2. **End of turn** (a microtask, queueMicrotask): what one run of JavaScript produced
 *    leaves together, still before the event loop moves on. Used for:
 *    - dispatch: the messages published to one peer in a run become one MESSAGE_BATCH
 *      (a request flushes the batch first, then goes at once);
 *    - mux: a message on a connection whose last write carried at most one message (the
 *      lone-message fast path; if more are queued before the microtask runs it falls
 *      back to the next turn like any batch);
 *    - socket: further writes of the run share one engine tick; on the batch driver, the
 *      datagrams of one recvmmsg callback are read in one tick;
 *    - batch driver: the datagrams queued in a run leave in one sendmmsg.
 *
 * 3. **Next turn** (setImmediate): batching for load, once the I/O callbacks of this
 *    loop iteration have run. Used for:
 *    - mux: a connection under load (its last write carried more than one message), and
 *      control frames (ping, pong, close, and CANCELs nobody waits on): they ride with
 *      the turn's batch, never on their own;
 *    - socket: engine work after input on per-datagram drivers (node:dgram delivers one
 *      datagram per callback; the end of the I/O turn batches them), timers' re-ticks.
 *
 * Why: a lone message never waits for company that is not coming (a setImmediate costs
 * a whole loop iteration, tens of microseconds per hop, and a Send crosses four layers);
 * batching is for load, where one write of 64 messages beats 64 writes; control frames
 * batch because nobody is waiting on them. The lone-message fast paths (same turn in the
 * socket, end of turn in the mux) were measured to help (docs/benchmarks.md) and stay.
 *
 * Sub-millisecond engine deadlines (pacing) wait for a 1 ms timer rather than spinning
 * on setImmediate: the pacer's burst allowance covers the wait.
 */
export type FlushMoment = 'same-turn' | 'end-of-turn' | 'next-turn';
