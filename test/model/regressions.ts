/**
 * Counterexamples the property runs found, shrunk, kept as fixed sequences that every backend
 * runs on every test run (model.test.ts).
 */
import type { QueueCommand } from './queues.js';

export const queueRegressions: { title: string; commands: QueueCommand[] }[] = [
  {
    // Memory and Redis reported the moment a later call noticed the death as diedAt.
    title: 'a message whose last lease ended died at the lease end, not when a later call noticed',
    commands: [
      { t: 'send', p: 0, delay: 0 },
      { t: 'receive', max: 1, vt: 'short' },
      { t: 'wait' },
      { t: 'receive', max: 1, vt: 'short' },
      { t: 'wait' },
      { t: 'deadLetters' },
    ],
  },
];
