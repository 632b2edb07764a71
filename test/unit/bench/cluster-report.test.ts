/**
 * The pure parts of `make bench-cluster`: the nftables loss rules (only inter-node UDP and
 * NATS TCP are touched), reading their counters, and the comparisons against the targets.
 */
import test from 'ava';
import { lossRuleset, parseCounters } from '../../../bench/cluster/netns';
import {
  COMPARISONS,
  computeComparisons,
  renderSection,
  targetMet,
} from '../../../bench/cluster/report';

test('the loss rules drop only UDP between the peer ports and TCP to and from NATS', t => {
  const rules = lossRuleset({ udpPeerPorts: [7401, 7411], natsPort: 4222 }, 10);
  const drops = rules.split('\n').filter(l => l.includes('drop'));
  t.deepEqual(
    drops.map(l => l.trim()),
    [
      'udp sport { 7401, 7411 } udp dport { 7401, 7411 } numgen random mod 1000 < 10 counter drop comment "meshwire_dropped"',
      'tcp dport 4222 numgen random mod 1000 < 10 counter drop comment "nats_dropped"',
      'tcp sport 4222 numgen random mod 1000 < 10 counter drop comment "nats_dropped"',
    ]
  );
  // Input hook: every loopback packet passes it exactly once, after GSO segmentation.
  t.true(rules.includes('type filter hook input priority 0; policy accept;'));
  t.throws(() => lossRuleset({ udpPeerPorts: [1], natsPort: 2 }, 1001));
  t.throws(() => lossRuleset({ udpPeerPorts: [1], natsPort: 2 }, 0.5));
});

test('counters are summed by rule comment from `nft -j list table`', t => {
  const json = JSON.stringify({
    nftables: [
      { metainfo: { version: '1.0.6' } },
      { table: { family: 'inet', name: 'mwbc' } },
      {
        rule: {
          comment: 'meshwire_seen',
          expr: [{ match: {} }, { counter: { packets: 1000, bytes: 9 } }],
        },
      },
      {
        rule: {
          comment: 'meshwire_dropped',
          expr: [{ counter: { packets: 10, bytes: 1 } }, { drop: null }],
        },
      },
      { rule: { comment: 'nats_seen', expr: [{ counter: { packets: 300, bytes: 1 } }] } },
      { rule: { comment: 'nats_seen', expr: [{ counter: { packets: 200, bytes: 1 } }] } },
      { rule: { expr: [{ counter: { packets: 5, bytes: 1 } }] } },
    ],
  });
  t.deepEqual(parseCounters(json), { meshwire_seen: 1000, meshwire_dropped: 10, nats_seen: 500 });
});

test('comparisons: ratios, the p50 difference, and targets', t => {
  const figures = {
    'meshwire.pubsub_mps_128': 100_000,
    'cluster.pubsub_mps_128': 80_000,
    'meshwire.request_p50_us': 1_000,
    'cluster.request_p50_us': 1_400,
    'loss1.cluster.request_p99_us': 30_000,
    'loss1.nats.request_p99_us': 200_000,
  };
  const c = computeComparisons(figures);
  t.is(c.cluster_pubsub_mps_128_vs_single, 0.8);
  t.is(c.cluster_request_p50_minus_single_us, 400);
  t.is(c.loss1_cluster_request_p99_vs_nats, 0.15);
  t.is(c.cluster_request_p50_vs_single, 1.4);
  // Figures that were not measured give no comparison (not NaN, not 0).
  t.false('cluster_request_rps_64_vs_single' in c);
  const def = (key: string) => COMPARISONS.find(d => d.key === key)!;
  t.false(targetMet(def('cluster_pubsub_mps_128_vs_single'), c.cluster_pubsub_mps_128_vs_single));
  t.true(targetMet(def('cluster_pubsub_mps_128_vs_single'), 0.9));
  t.false(targetMet(def('cluster_request_p50_minus_single_us'), 400));
  t.true(targetMet(def('cluster_request_p50_minus_single_us'), 300));
  t.true(targetMet(def('loss1_cluster_request_p99_vs_nats'), 0.15));
  t.is(targetMet(def('cluster_request_p50_vs_single'), 1.4), undefined);
  const md = renderSection(figures, c, {
    command: 'make bench-cluster',
    date: '2026-11-23 17:00 UTC',
    runs: 5,
    warmupMs: 500,
    durationMs: 2000,
    node: 'v20',
    cpus: 2,
    machine: { cpuModel: 'Test CPU', cores: 2, kernel: '6.1.0', node: 'v20' },
    processes: { 'cluster node-a': 'batch/openssl', 'cluster node-b': 'dgram/sodium' },
    spread: { 'cluster.request_p50_us': [1_300, 1_400, 1_500] },
  });
  t.regex(
    md.replace(/\n/g, ' '),
    /Machine: Test CPU, 2 cores, Linux 6\.1\.0, Node v20\. UDP driver\/AEAD backend as each meshwire process reported it: cluster node-a batch\/openssl, cluster node-b dgram\/sodium\./
  );
  t.true(
    md.includes(
      '| pub/sub msgs/s, 128 B, A -> B | 80,000 | 100,000 (one node) | 0.80x | >= 0.9x | **no** |'
    )
  );
  t.true(md.includes('+400 us | <= +300 us | **no** |'));
  t.true(md.includes('`cluster.request_p50_us` | 1,400 | 1,300, 1,400, 1,500 |'));
});
