/**
 * The OTLP/gRPC receiver of the tests in its own process for bench-telemetry, so that
 * decoding the exported spans does not slow the load-generating client. Talks over the
 * fork IPC channel: sends { endpoint } once listening, answers 'count' with
 * { count: spans received }, exits when the parent disconnects.
 */
import { startOtlpReceiver } from '../../test/helpers/otlp-receiver';

void (async () => {
  const receiver = await startOtlpReceiver({ keep: false });
  process.send?.({ endpoint: receiver.endpoint });
  process.on('message', (m: { type?: string }) => {
    if (m.type === 'count') process.send?.({ count: receiver.spanCount });
  });
  process.on('disconnect', () => {
    void receiver.close().then(() => process.exit(0));
  });
})();
