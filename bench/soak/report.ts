/** The printed form of a bounded load run's report: p50/p99 per route, growth, the ledgers, the verdict. */
import { int, ms, ratio, table } from '../lib/table.js';
import type { Growth, SoakReport } from './soak.js';

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(0)} MB`;

function growthRow(name: string, g: Growth, unit: (n: number) => string): string[] {
  return [
    name,
    unit(g.first),
    unit(g.last),
    ratio(g.ratio),
    unit(g.max),
    g.bound === undefined ? 'not judged' : unit(g.bound),
  ];
}

export function render(report: SoakReport): string {
  const lines = [
    `\n## ${report.backend}: ${int(report.scheduled)} calls scheduled at ${report.rate}/s over ${report.minutes} min ` +
      `(${ms(report.durationMs / 1000)} s, ${report.achievedRate.toFixed(1)}/s started, ${report.skipped} skipped over the in-flight cap)`,
    '',
    table(
      ['route', 'calls', 'p50 ms', 'p99 ms', '5xx', 'other 4xx', 'no answer'],
      report.routes.map((r) => [
        r.route,
        int(r.calls),
        ms(r.p50Ms),
        ms(r.p99Ms),
        int(r.status5xx),
        r.unexpected4xx === 0
          ? '0'
          : `${r.unexpected4xx} (${Object.entries(r.otherStatuses)
              .filter(([status]) => Number(status) < 500)
              .map(([status, n]) => `${n}× ${status}`)
              .join(', ')})`,
        int(r.noAnswer),
      ]),
      ['left', 'right', 'right', 'right', 'right', 'right', 'right'],
    ),
    '',
    table(
      ['sampled (every 2 s)', 'first third', 'last third', 'growth', 'max', 'fails above'],
      [
        growthRow('resident memory', report.growth.rssBytes, mb),
        ...Object.entries(report.growth.connections).map(([name, g]) =>
          growthRow(`${name} connections`, g, (n) => n.toFixed(1).replace(/\.0$/, '')),
        ),
      ],
    ),
    '',
    `queue: ${report.queue.sent} sends acknowledged, ${report.queue.received} received, ${report.queue.acked} acked, ` +
      `${report.queue.lost} lost, ${report.queue.duplicated} duplicated`,
    `WebSocket: ${report.delivery.received} of ${report.delivery.expected} frames received, ` +
      `${report.delivery.duplicated} duplicated`,
    ...report.routes.flatMap((r) =>
      r.firstOtherBody ? [`${r.route}: first other answer ${r.firstOtherBody}`] : [],
    ),
    report.ok ? 'verdict: ok' : `verdict: FAILED\n${report.failures.map((f) => `  - ${f}`).join('\n')}`,
  ];
  return lines.join('\n');
}
