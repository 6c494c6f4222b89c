/** The idle executors' monthly bill (bench/lib/delivery-cost.ts): the arithmetic and what the page shows. */
import { describe, expect, it } from 'vitest';
import { type DeliveryCostResults, monthlyCost, renderDeliveryCost } from '../../bench/lib/delivery-cost.js';

const summary = { count: 10, p50: 120, p90: 400, max: 700 };

function results(push: DeliveryCostResults['push']): DeliveryCostResults {
  return {
    meta: {
      date: '2026-12-06T03:00:00.000Z',
      durationSeconds: 150,
      executors: 100,
      windowSeconds: 60,
      commands: 10,
      longPollWait: 20,
      memoryMB: 512,
      target: 'serverless-offline',
      machine: { cpu: 'cpu', cores: 2, memoryGiB: 24, load: [1, 1, 1] },
    },
    poll: {
      observedExecutorSeconds: 6000,
      requests: 300,
      failedRequests: 0,
      functionSeconds: 6000,
      perExecutorHour: { invocations: 180, functionSeconds: 3600 },
      latencyMs: summary,
    },
    push,
  };
}

describe('idle executors: monthly cost', () => {
  it('a long poll held all hour: 100 executors keep 50 GB busy, about $1,750 a month of Lambda', () => {
    const cost = monthlyCost({ invocations: 180, functionSeconds: 3600, httpRequests: 180 }, 100, 512);
    // 100 × 730 h × 3600 s × 0.5 GB × $0.0000133334
    expect(cost.lambda).toBeCloseTo(1752.01 + 100 * 730 * 180 * 0.2e-6, 1);
    expect(cost.gateway).toBeCloseTo(100 * 730 * 180 * 1e-6, 4);
  });

  it('push: connection-minutes and messages at the WebSocket prices', () => {
    const cost = monthlyCost(
      { invocations: 15, functionSeconds: 1, connectionMinutes: 60, messages: 26 },
      100,
      512,
    );
    expect(cost.gateway).toBeCloseTo(100 * 730 * (60 * 0.25e-6 + 26 * 1e-6), 6);
    expect(cost.total).toBeLessThan(5);
  });

  it('the page shows both columns, the dated prices, and says when push was not measured', () => {
    const served = renderDeliveryCost(
      results({
        served: true,
        connectMs: summary,
        receiveMs: summary,
        pingMs: summary,
        perExecutorHour: { invocations: 15, functionSeconds: 1.5, connectionMinutes: 60, messages: 26 },
        latencyMs: { count: 10, p50: 35, p90: 60, max: 80 },
      }),
      'bench/results/delivery-cost.json',
    );
    expect(served).toContain('list prices as of 2026-12');
    expect(served).toMatch(/\| function-seconds +\| +3600\.0 \| +1\.50 \|/);
    expect(served).toMatch(/\| total +\| +\$1,7\d\d \| +\$\d\.\d\d \|/);
    const refused = renderDeliveryCost(results({ served: false, reason: 'unknown action' }), 'x.json');
    expect(refused).toContain('Push not measured: the service refused the `receive` frame (unknown action)');
  });
});
