'use strict';
// `helm test` driver, run by the image's own Node in the test pod (the image has no shell).
// 1. every node answers grpc.health.v1.Health/Check with SERVING;
// 2. a subscriber started with the image's CLI (`meshwire sub`) on the first node receives
//    a message sent with `meshwire send` to the last node (so across nodes when there are
//    several), within TEST_TIMEOUT_SECONDS.
const { spawn, spawnSync } = require('node:child_process');
const { readFileSync } = require('node:fs');
const crypto = require('node:crypto');
const { join } = require('node:path');

// The image's application directory (overridable to run this script from a checkout).
const APP = process.env.TEST_APP_DIR || '/app';
const grpc = require(join(APP, 'node_modules/@grpc/grpc-js'));
const health = require(join(APP, 'node_modules/grpc-health-check'));
const CLI = join(APP, 'dist/src/cli/main.js');
const nodes = process.env.TEST_NODES.split(',');
const port = process.env.TEST_GRPC_PORT;
const deadline = Date.now() + Number(process.env.TEST_TIMEOUT_SECONDS) * 1000;
const caFile = process.env.TEST_TLS_CA_FILE || '';
const tokenFile = process.env.TEST_TOKEN_FILE || '';

const certFile = process.env.TEST_TLS_CERT_FILE || '';
const keyFile = process.env.TEST_TLS_KEY_FILE || '';

// The token goes to the CLI through MESHWIRE_TOKEN when the CLI reads it (so it stays out
// of the process list), else through --token.
const sendHelp =
  spawnSync(process.execPath, [CLI, 'send', '--help'], { encoding: 'utf8' }).stdout || '';
const cliEnv = { ...process.env };
const cliFlags = [];
if (tokenFile) {
  const token = readFileSync(tokenFile, 'utf8').trim();
  if (!sendHelp.includes('MESHWIRE_TOKEN') && sendHelp.includes('--token')) {
    cliFlags.push('--token', token);
  } else {
    cliEnv.MESHWIRE_TOKEN = token;
  }
}
if (caFile) cliFlags.push('--tls-ca-file', caFile);
if (certFile) cliFlags.push('--tls-cert-file', certFile, '--tls-key-file', keyFile);

function log(msg) {
  process.stdout.write(`[helm-test] ${msg}\n`);
}

function fail(msg) {
  log(`FAIL: ${msg}`);
  process.exit(1);
}

function checkHealth(host) {
  const creds = caFile
    ? grpc.credentials.createSsl(
        readFileSync(caFile),
        keyFile ? readFileSync(keyFile) : null,
        certFile ? readFileSync(certFile) : null
      )
    : grpc.credentials.createInsecure();
  const Client = grpc.makeGenericClientConstructor(health.service, 'Health');
  const client = new Client(`${host}:${port}`, creds);
  return new Promise(resolve => {
    client.check({ service: '' }, { deadline: Date.now() + 5000 }, (err, res) => {
      client.close();
      resolve(err ? `error ${err.code}: ${err.details}` : res.status);
    });
  });
}

async function main() {
  for (const host of nodes) {
    let status;
    do {
      status = await checkHealth(host);
      if (status === 'SERVING') break;
      await new Promise(r => setTimeout(r, 1000));
    } while (Date.now() < deadline);
    if (status !== 'SERVING') fail(`${host}: health ${status}`);
    log(`${host}: SERVING`);
  }

  const topic = `helm-test.${crypto.randomBytes(6).toString('hex')}`;
  const payload = `round-trip-${crypto.randomBytes(6).toString('hex')}`;
  const subNode = nodes[0];
  const sendNode = nodes[nodes.length - 1];
  const sub = spawn(
    process.execPath,
    [CLI, 'sub', topic, '--count', '1', '--server', `${subNode}:${port}`, ...cliFlags],
    { env: cliEnv }
  );
  // The CLI prints deliveries in the proto3 JSON mapping, so the payload is base64 there
  // (older CLIs printed the text): look for either.
  const payloadB64 = Buffer.from(payload).toString('base64');
  let received = '';
  const got = () => received.includes(payload) || received.includes(payloadB64);
  sub.stdout.on('data', d => (received += d));
  sub.stderr.on('data', d => process.stderr.write(d));
  let subExit;
  sub.on('exit', code => (subExit = code));
  log(`subscribed to ${topic} on ${subNode}; sending on ${sendNode}`);

  // The subscription (and, across nodes, its interest) takes a moment to be in place:
  // send again until the subscriber prints the payload or time runs out.
  while (Date.now() < deadline && !got()) {
    if (subExit !== undefined) fail(`meshwire sub exited with ${subExit}: ${received}`);
    const send = spawnSync(
      process.execPath,
      [CLI, 'send', topic, payload, '--server', `${sendNode}:${port}`, ...cliFlags],
      { encoding: 'utf8', timeout: 30000, env: cliEnv }
    );
    if (send.status !== 0) log(`meshwire send exited with ${send.status}: ${send.stderr.trim()}`);
    await new Promise(r => setTimeout(r, 1000));
  }
  sub.kill();
  if (!got()) {
    fail(
      `no delivery of ${payload} on ${subNode} within the timeout; subscriber printed: ${received}`
    );
  }
  log(`received ${payload} on ${subNode}: OK`);
  process.exit(0);
}

main().catch(err => fail(err.stack || String(err)));
