/**
 * Idle executors' cost, long poll versus push (bench/delivery-cost.ts): the results file's shape,
 * and its section of docs/benchmarks.md, which turns the measured function-seconds into a monthly
 * bill at dated AWS list prices.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { int, ms, table } from './table.js';

export const DELIVERY_COST_FILE = 'delivery-cost.json';

/** The push receivers ping this often (clients/typescript/src/receive.ts, clients/python). */
export const PING_INTERVAL_SECONDS = 300;

/** AWS list prices, us-east-1, as of 2026-12: check them at aws.amazon.com/lambda/pricing and /api-gateway/pricing. */
export const PRICES = {
  asOf: '2026-12',
  lambdaGbSecond: 0.0000133334, // arm64
  lambdaRequest: 0.2 / 1e6,
  httpApiRequest: 1.0 / 1e6,
  webSocketConnectionMinute: 0.25 / 1e6,
  webSocketMessage: 1.0 / 1e6,
};

export const HOURS_PER_MONTH = 730;

interface Summary {
  count: number;
  p50: number;
  p90: number;
  max: number;
}

export interface DeliveryCostResults {
  meta: {
    date: string;
    durationSeconds: number;
    executors: number;
    windowSeconds: number;
    commands: number;
    longPollWait: number;
    memoryMB: number;
    target: string;
    machine: { cpu: string; cores: number; memoryGiB: number; load: number[] };
  };
  poll: {
    observedExecutorSeconds: number;
    requests: number;
    /** Receives that answered without messages (serverless-offline's Lambda timeout): counted, their time included. */
    failedRequests: number;
    /** What the failed receives answered (a few, deduplicated). */
    failures?: string[];
    functionSeconds: number;
    perExecutorHour: { invocations: number; functionSeconds: number };
    latencyMs: Summary;
  };
  push:
    | { served: false; reason: string }
    | {
        served: true;
        connectMs: Summary;
        receiveMs: Summary;
        pingMs: Summary;
        perExecutorHour: {
          invocations: number;
          functionSeconds: number;
          connectionMinutes: number;
          messages: number;
        };
        latencyMs: Summary;
      };
}

export function writeDeliveryCost(dir: string, results: DeliveryCostResults): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, DELIVERY_COST_FILE);
  writeFileSync(path, `${JSON.stringify(results, null, 2)}\n`);
  return path;
}

const dollars = (value: number) =>
  value >= 100 ? `$${int(value)}` : value >= 0.01 ? `$${value.toFixed(2)}` : `$${value.toFixed(4)}`;
const fixed = (value: number, digits = 1) => value.toFixed(digits);

/** A month's bill for `executors` idle executors: Lambda duration and requests, and API Gateway. */
export function monthlyCost(
  perExecutorHour: {
    invocations: number;
    functionSeconds: number;
    connectionMinutes?: number;
    messages?: number;
    httpRequests?: number;
  },
  executors: number,
  memoryMB: number,
) {
  const hours = HOURS_PER_MONTH * executors;
  const lambda =
    hours *
    (perExecutorHour.functionSeconds * (memoryMB / 1024) * PRICES.lambdaGbSecond +
      perExecutorHour.invocations * PRICES.lambdaRequest);
  const gateway =
    hours *
    ((perExecutorHour.httpRequests ?? 0) * PRICES.httpApiRequest +
      (perExecutorHour.connectionMinutes ?? 0) * PRICES.webSocketConnectionMinute +
      (perExecutorHour.messages ?? 0) * PRICES.webSocketMessage);
  return { lambda, gateway, total: lambda + gateway };
}

/** The section of docs/benchmarks.md (inside the rendered block). */
export function renderDeliveryCost(results: DeliveryCostResults, file: string): string {
  const { meta, poll, push } = results;
  const pollCost = monthlyCost(
    { ...poll.perExecutorHour, httpRequests: poll.perExecutorHour.invocations },
    meta.executors,
    meta.memoryMB,
  );
  const pushCost = push.served ? monthlyCost(push.perExecutorHour, meta.executors, meta.memoryMB) : undefined;
  const lines = [
    `From \`${file}\`: ${meta.executors} idle executors for ${meta.windowSeconds} s each way, scaled to an hour, on ${meta.target}; run of ${meta.date.slice(0, 16).replace('T', ' ')} UTC (${meta.durationSeconds} s) on ${meta.machine.cpu} (${meta.machine.cores} cores, load average ${meta.machine.load.join(' ')} at the end); ${meta.commands} commands sent to one executor during each window for the latency.`,
    table(
      ['per executor-hour', `long poll (wait ${meta.longPollWait} s)`, 'push'],
      [
        [
          'function-seconds',
          fixed(poll.perExecutorHour.functionSeconds),
          push.served ? fixed(push.perExecutorHour.functionSeconds, 2) : '—',
        ],
        [
          'invocations',
          fixed(poll.perExecutorHour.invocations),
          push.served ? fixed(push.perExecutorHour.invocations) : '—',
        ],
        ['connection-minutes', '0', push.served ? int(push.perExecutorHour.connectionMinutes) : '—'],
        ['WebSocket messages', '0', push.served ? int(push.perExecutorHour.messages) : '—'],
        [
          'delivery latency p50 / p90 / max ms',
          `${ms(poll.latencyMs.p50)} / ${ms(poll.latencyMs.p90)} / ${ms(poll.latencyMs.max)}`,
          push.served
            ? `${ms(push.latencyMs.p50)} / ${ms(push.latencyMs.p90)} / ${ms(push.latencyMs.max)}`
            : '—',
        ],
      ],
      ['left', 'right', 'right'],
    ),
    `A month (${HOURS_PER_MONTH} h) of ${meta.executors} idle executors at ${meta.memoryMB} MB, at AWS list prices as of ${PRICES.asOf} (us-east-1; Lambda arm64 $${PRICES.lambdaGbSecond} per GB-second and $0.20 per million requests; HTTP API $1.00 per million requests; WebSocket API $0.25 per million connection-minutes and $1.00 per million messages — check them before relying on these):`,
    table(
      ['monthly', 'long poll', 'push'],
      [
        ['Lambda', dollars(pollCost.lambda), pushCost ? dollars(pushCost.lambda) : '—'],
        ['API Gateway', dollars(pollCost.gateway), pushCost ? dollars(pushCost.gateway) : '—'],
        ['total', dollars(pollCost.total), pushCost ? dollars(pushCost.total) : '—'],
      ],
      ['left', 'right', 'right'],
    ),
  ];
  lines.push(
    `Long poll: ${poll.requests} receives in the window, ${poll.failedRequests} of them answered by serverless-offline's Lambda timeout (29 s) instead of an empty list (their time counts: the function ran). Latency from ${poll.latencyMs.count} commands by long poll${push.served ? ` and ${push.latencyMs.count} by push` : ''}; a command sent just before the window ended may not be counted.`,
  );
  if (!push.served) {
    lines.push(`Push not measured: the service refused the \`receive\` frame (${push.reason}).`);
  } else {
    lines.push(
      `Push's function time per connection: connect (authorizer and \`$connect\`) p50 ${ms(push.connectMs.p50)} ms, \`receive\` p50 ${ms(push.receiveMs.p50)} ms, a ping p50 ${ms(push.pingMs.p50)} ms, measured at the client.`,
    );
  }
  return lines.join('\n\n');
}
