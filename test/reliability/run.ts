/**
 * `npm run reliability:redis -- <experiment>…`: the full runs behind docs/reliability-redis.md,
 * each printed as a JSON line and as a table row.
 *
 *   failover     Sentinel group, primary SIGKILLed mid-stream: default settings and
 *                redis.waitForReplicas, each with the replicas cut off 300 ms before and without
 *   persistence  single Redis SIGKILLed and restarted: no persistence, appendfsync everysec, always
 *   soak         crash soak, 20,000 messages, 8 consumers, on redis, postgresql and hybrid
 *
 * Options: --writers N (failover/persistence), --seconds N (of writes before the fault),
 * --messages N and --consumers N (soak), --backend redis|postgresql|hybrid (soak: one only),
 * --lease-commit async|sync (soak, postgresql: how lease writes commit; default async).
 */
import { parseArgs } from 'node:util';
import { type FaultReport, redisFailover, redisRestart } from './redis-faults.js';
import { crashSoak, type SoakBackend, type SoakReport } from './soak.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    writers: { type: 'string', default: '8' },
    seconds: { type: 'string', default: '3' },
    messages: { type: 'string', default: '20000' },
    consumers: { type: 'string', default: '8' },
    backend: { type: 'string' },
    'lease-commit': { type: 'string', default: 'async' },
  },
});
const experiments = positionals.length > 0 ? positionals : ['failover', 'persistence', 'soak'];
const writers = Number(values.writers);
const beforeMs = Number(values.seconds) * 1000;
const command = (name: string) => `npm run reliability:redis -- ${name}`;

function faultRow(r: FaultReport, name: string): string {
  const lost = r.lostKv + r.lostMessages;
  return `| ${r.scenario} | ${r.writers} writers, kv.set + queues.send, ${r.durationMs} ms | SIGKILL | ${r.acknowledged} (${r.failed} failed) | ${lost} (${r.lostKv} kv, ${r.lostMessages} messages) | ${r.duplicated} | ${r.recoveryMs} ms${r.promotedMs === undefined ? '' : ` (promoted after ${r.promotedMs} ms)`} | \`${command(name)}\` |`;
}

function soakRow(r: SoakReport): string {
  return `| crash soak, ${r.backend}${r.leaseCommit ? ` (leaseCommit: ${r.leaseCommit})` : ''} | ${r.messages} messages, ${r.consumers} consumers, ${r.durationMs} ms | ${r.kills} consumer SIGKILLs, 1 server restart | ${r.sent} sent, ${r.delivered} delivered | ${r.lost} | ${r.duplicates} (unexplained ${r.unexplainedDuplicates}; early redeliveries ${r.earlyRedeliveries}${r.leaseCommit === 'async' ? `; after a crash undid an asynchronous lease write ${r.crashRedeliveries}` : ''}) | ${r.restartRecoveryMs} ms | \`${command(`soak --backend ${r.backend}${r.leaseCommit === 'sync' ? ' --lease-commit sync' : ''}`)}\` |`;
}

const rows: string[] = [];
const print = (report: object, row: string) => {
  console.log(JSON.stringify(report));
  console.log(row);
  rows.push(row);
};

for (const experiment of experiments) {
  if (experiment === 'failover') {
    for (const replicaLagMs of [0, 300]) {
      for (const waitForReplicas of [undefined, { replicas: 1, timeout: 0.5 }]) {
        const r = await redisFailover({ writers, beforeMs, afterMs: 1000, replicaLagMs, waitForReplicas });
        print(r, faultRow(r, 'failover'));
      }
    }
  } else if (experiment === 'persistence') {
    for (const persistence of ['none', 'everysec', 'always'] as const) {
      const r = await redisRestart(persistence, { writers, beforeMs, afterMs: 1000 });
      print(r, faultRow(r, 'persistence'));
    }
  } else if (experiment === 'soak') {
    const backends = (values.backend ? [values.backend] : ['redis', 'postgresql', 'hybrid']) as SoakBackend[];
    for (const backend of backends) {
      const r = await crashSoak({
        backend,
        leaseCommit: values['lease-commit'] === 'sync' ? 'sync' : 'async',
        messages: Number(values.messages),
        consumers: Number(values.consumers),
        log: (line) => console.error(`soak ${backend}: ${line}`),
      });
      print(r, soakRow(r));
    }
  } else {
    console.error(`unknown experiment ${experiment} (failover, persistence, soak)`);
    process.exit(2);
  }
}

console.log(
  '\n| scenario | load | faults injected | acknowledged | lost | duplicated | recovery time | command |',
);
console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
for (const row of rows) console.log(row);
process.exit(0);
