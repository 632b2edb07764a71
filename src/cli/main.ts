#!/usr/bin/env node
/**
 * The meshwire command line: `serve` runs a node; `send`, `sub`, `request`, `reply-with`,
 * `peers` and `bench` are clients of a running node.
 *
 * Exit codes (for scripts): 0 success; 1 other errors; 2 usage or invalid argument;
 * 3 unavailable (node, peer or responder unreachable); 4 deadline exceeded; 5 not found;
 * 6 resource exhausted; 7 unauthenticated or permission denied.
 *
 * Everything comes through src/app (the layer below); each command's module is loaded
 * only when that command runs.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { addConfigOptions } from '../app';
import { tuneRuntime } from '../common';
import { EXIT, exitCodeFor } from './exit-codes';

tuneRuntime();

/** The version in the package.json above this file (src/cli, dist/src/cli, or /app in the image). */
function packageVersion(): string {
  let dir = __dirname;
  for (let i = 0; i < 5; i++) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'meshwire' && pkg.version) return pkg.version;
    }
    dir = dirname(dir);
  }
  return 'unknown';
}

const program = new Command('meshwire')
  .description('meshwire: a gRPC messaging mesh over reliable UDP')
  .version(packageVersion(), '-V, --version', 'print the meshwire version')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

addConfigOptions(
  program
    .command('serve')
    .description('run a meshwire node (flags > MESHWIRE_* environment > --config file > defaults)')
).action(async (_opts: unknown, cmd: Command) => {
  const { serve } = await import('./serve');
  await serve(cmd.parent ? process.argv.slice(process.argv.indexOf('serve') + 1) : []);
});

const serverOption = (): Option =>
  new Option('-s, --server <host:port>', 'node gRPC address')
    .env('MESHWIRE_SERVER')
    .default('127.0.0.1:7400');

/** TLS and token options of every client command (docs/security.md). */
function securityOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('--tls-ca-file <file>', 'CA bundle to verify the node (turns on TLS)').env(
        'MESHWIRE_TLS_CA_FILE'
      )
    )
    .addOption(
      new Option('--tls-cert-file <file>', 'client certificate for mTLS').env(
        'MESHWIRE_CLIENT_CERT_FILE'
      )
    )
    .addOption(
      new Option('--tls-key-file <file>', 'client private key for mTLS').env(
        'MESHWIRE_CLIENT_KEY_FILE'
      )
    )
    .addOption(
      new Option('--tls-server-name <name>', 'name to verify in the node certificate').env(
        'MESHWIRE_TLS_SERVER_NAME'
      )
    )
    .addOption(
      new Option(
        '--token <token>',
        'bearer token (prefer the environment: argv shows in the process list)'
      ).env('MESHWIRE_TOKEN')
    );
}

function targetOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--peer <id>', 'target node id').conflicts('address'))
    .addOption(new Option('--address <host:port>', 'target node UDP address'))
    .option('-H, --header <key=value...>', 'message header (repeatable)');
}

targetOptions(
  program
    .command('send')
    .description('send one message (payload "-" reads standard input)')
    .argument('<topic>', 'topic, e.g. orders.created')
    .argument('[payload]', 'payload text; "-" for standard input', '-')
    .addOption(serverOption())
    .addOption(
      new Option('--ack <mode>', 'when to return')
        .choices(['accepted', 'delivered'])
        .default('accepted')
    )
    .option('--count <n>', 'send the message n times', '1')
    .option(
      '--idempotency-key <key>',
      'exactly once within the idempotency window, through any node: a retry prints the original ack with "duplicate": true'
    )
).action(async (topic: string, payload: string, opts: Record<string, unknown>) => {
  const { sendCommand } = await import('./client-commands');
  await sendCommand(topic, payload, opts);
});

program
  .command('sub')
  .description('subscribe and print each delivery as a JSON line (messaging.v1.Delivery)')
  .argument('<patterns...>', 'topic patterns; * matches one token, > the rest')
  .addOption(serverOption())
  .option('-q, --queue-group <name>', 'queue group (one member gets each message)')
  .option('--count <n>', 'exit after n deliveries')
  .option('--max-batch <n>', 'deliveries per stream message', '64')
  .option('--text', 'print payloads as UTF-8 text where valid (default: base64, proto3 JSON)')
  .addOption(
    new Option(
      '--raw',
      'write the payload bytes only, exactly as received (no JSON, nothing added)'
    ).conflicts('text')
  )
  .action(async (patterns: string[], opts: Record<string, unknown>) => {
    const { subCommand } = await import('./client-commands');
    await subCommand(patterns, opts);
  });

targetOptions(
  program
    .command('request')
    .description(
      'send a request and print the first reply (messaging.v1.RequestResponse); with --replies or --stall, gather replies from every responder (RequestMany: one RequestManyResponse line each, as they come)'
    )
    .argument('<topic>')
    .argument('[payload]', 'payload text; "-" for standard input', '-')
    .addOption(serverOption())
    .option('--timeout-ms <ms>', 'how long to wait for the reply (RequestMany: the gather)', '5000')
    .option(
      '--replies <n>',
      'RequestMany: end at n replies ("all": as many as come before the timeout, stall or every responder answered)'
    )
    .option('--stall <ms>', 'RequestMany: end this long after the latest reply')
    .option('--text', 'print the payload as UTF-8 text where valid (default: base64, proto3 JSON)')
    .addOption(
      new Option('--raw', 'write the reply payload bytes only, exactly as received').conflicts(
        'text'
      )
    )
).action(async (topic: string, payload: string, opts: Record<string, unknown>) => {
  const { requestCommand } = await import('./client-commands');
  await requestCommand(topic, payload, opts);
});

program
  .command('reply-with')
  .alias('respond')
  .description('answer every request on the patterns with a fixed payload (or --echo)')
  .argument('<pattern>')
  .argument('[payload]', 'reply payload', '')
  .addOption(serverOption())
  .option('--echo', 'reply with the request payload')
  .option('-q, --queue-group <name>', 'queue group, to share requests among responders')
  .option('--count <n>', 'exit after n replies accepted by the node')
  .action(async (pattern: string, payload: string, opts: Record<string, unknown>) => {
    const { replyCommand } = await import('./client-commands');
    await replyCommand(pattern, payload, opts);
  });

const bench = program
  .command('bench')
  .description('load a node or cluster: pub/sub or request/reply throughput and latency');
/** Options both bench commands share. */
function benchOptions(cmd: Command): Command {
  return cmd
    .addOption(serverOption())
    .option('--subject <subject>', 'topic to load', 'meshwire.bench')
    .option('--size <bytes>', 'payload size (pub: 8 or more to measure latency)', '128')
    .option('--msgs <n>', 'messages (requests) in all (default 100000 without --duration-ms)')
    .option('--duration-ms <ms>', 'how long to send (with --msgs: whichever comes first)')
    .option('--json', 'print the summary as one JSON object')
    .option('--progress', 'progress line on stderr even when it is not a terminal');
}
benchOptions(
  bench
    .command('pub')
    .description('publishers (SendStream batches) and subscribers; msgs/s, MiB/s, latency')
    .option('--pubs <n>', 'publishers', '1')
    .option('--subs <n>', 'subscribers (0: publish only)', '1')
    .option('-q, --queue-group <name>', 'subscribers share one queue group')
    .option('--batch <n>', 'messages per SendStream request', '64')
    .option('--in-flight <n>', 'unacknowledged SendStream requests per publisher', '8')
    .option('--window <n>', 'messages sent ahead of what subscribers received', '10000')
).action(async (opts: Record<string, unknown>) => {
  const [{ benchPub }, { connectClients }] = await Promise.all([
    import('./bench'),
    import('./client-commands'),
  ]);
  const clients = await connectClients(opts);
  try {
    await benchPub(clients, opts);
  } finally {
    clients.close();
  }
});
benchOptions(
  bench
    .command('request')
    .description("requests over RequestStream answered by the tool's responders; latency")
    .option('--concurrency <n>', 'requests in flight', '64')
    .option('--responders <n>', 'responders started by the tool (0: use existing ones)', '1')
    .option('--timeout-ms <ms>', 'timeout of each request', '5000')
).action(async (opts: Record<string, unknown>) => {
  const [{ benchRequest }, { connectClients }] = await Promise.all([
    import('./bench'),
    import('./client-commands'),
  ]);
  const clients = await connectClients(opts);
  try {
    await benchRequest(clients, opts);
  } finally {
    clients.close();
  }
});

const peers = program.command('peers').description('list and edit the peer directory');
peers
  .command('list', { isDefault: true })
  .addOption(serverOption())
  .action(async (opts: Record<string, unknown>) => {
    const { peersList } = await import('./client-commands');
    await peersList(opts);
  });
peers
  .command('put')
  .argument('<id>')
  .argument('<addresses...>', 'UDP addresses host:port')
  .addOption(serverOption())
  .action(async (id: string, addresses: string[], opts: Record<string, unknown>) => {
    const { peersPut } = await import('./client-commands');
    await peersPut(id, addresses, opts);
  });
peers
  .command('delete')
  .argument('<id>')
  .addOption(serverOption())
  .action(async (id: string, opts: Record<string, unknown>) => {
    const { peersDelete } = await import('./client-commands');
    await peersDelete(id, opts);
  });

// Every client command (all but serve) speaks TLS and tokens.
for (const cmd of [...program.commands, ...peers.commands, ...bench.commands]) {
  if (!['serve', 'peers', 'bench'].includes(cmd.name())) securityOptions(cmd);
}

async function main(): Promise<void> {
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
      return;
    }
    // gRPC errors carry the server's message in `details`; ours in `message`.
    const e = err as Error & { details?: string };
    console.error(`meshwire: ${e.details || e.message}`);
    process.exitCode = exitCodeFor(err);
    // A failed command ends now even if something it opened is still referenced (e.g. a
    // listener that failed after others bound): the error line is already written.
    setTimeout(() => process.exit(), 1000).unref();
  }
}

void main();
