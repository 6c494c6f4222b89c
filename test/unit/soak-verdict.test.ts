import { describe, expect, it } from 'vitest';
import { type Delivery, judge } from '../reliability/soak-verdict.js';

const visibilityMs = 5000;
const crashAt = 100_000;
const upAt = crashAt + 1500;
/** Asynchronous lease commits; the last send acknowledged before the crash began 2 s before it. */
const crash = { durableBefore: crashAt - 2000, upAt };

const delivery = (id: string, s: number, a: number, t0: number, p: number, t1 = t0 + 5): Delivery => ({
  id,
  s,
  a,
  t0,
  t1,
  p,
});

function verdict(
  deliveries: Delivery[],
  extra: Partial<Parameters<typeof judge>[1]> = {},
): ReturnType<typeof judge> {
  return judge(deliveries, {
    messages: new Set(deliveries.map((d) => d.s)).size,
    visibilityMs,
    killed: new Map(),
    ackFailed: new Set(),
    ackTimes: new Map(),
    ...extra,
  });
}

describe('crash soak verdict', () => {
  it('one delivery per message: nothing early, duplicated or missing', () => {
    const r = verdict([delivery('a', 0, 1, 1000, 1), delivery('b', 1, 1, 1000, 2)], { messages: 3 });
    expect(r).toEqual({
      delivered: 2,
      neverDelivered: 1,
      early: 0,
      duplicates: 0,
      unexplained: 0,
      undone: 0,
      samples: [],
    });
  });

  it('a redelivery before the lease ended is early unless the attempt count shows the crash undid the claim', () => {
    const claimUndone = [delivery('a', 0, 1, crashAt - 300, 1), delivery('a', 0, 1, crashAt + 1600, 2)];
    expect(verdict(claimUndone)).toMatchObject({ early: 1, undone: 0 });
    expect(verdict(claimUndone, { crash })).toMatchObject({ early: 0, undone: 1 });
    // The claim survived (the count went on): the crash does not explain it.
    const claimKept = [delivery('a', 0, 1, crashAt - 300, 1), delivery('a', 0, 2, crashAt + 1600, 2)];
    const kept = verdict(claimKept, { crash });
    expect(kept).toMatchObject({ early: 1, undone: 0 });
    // Early, and a duplicate nothing explains (no kill, no failed ack): both sampled with their evidence.
    expect(kept.samples.map((x) => JSON.parse(x))).toEqual([
      { why: 'early', before: claimKept[0], after: claimKept[1], crash },
      { why: 'unexplained duplicate', before: claimKept[0], after: claimKept[1], crash },
    ]);
    // Both deliveries after the server was back: no crash in between.
    const afterCrash = [delivery('a', 0, 1, upAt + 100, 1), delivery('a', 0, 1, upAt + 200, 2)];
    expect(verdict(afterCrash, { crash })).toMatchObject({ early: 1, undone: 0 });
  });

  it('a duplicate after an answered ack is unexplained unless the ack fell where the crash could undo it', () => {
    const deliveries = [delivery('a', 0, 1, crashAt - 4000, 1), delivery('a', 0, 2, crashAt + 2000, 2)];
    const ackTimes = new Map([['a:1', [crashAt - 100]]]);
    expect(verdict(deliveries, { ackTimes })).toMatchObject({ duplicates: 1, unexplained: 1, undone: 0 });
    expect(verdict(deliveries, { ackTimes, crash })).toMatchObject({ unexplained: 0, undone: 1, early: 0 });
    const ackedEarlier = new Map([['a:1', [crashAt - 3900]]]);
    expect(verdict(deliveries, { ackTimes: ackedEarlier, crash })).toMatchObject({
      unexplained: 1,
      undone: 0,
    });
  });

  it('a kill, a failed ack or a second message for the send explains a duplicate without the crash', () => {
    const deliveries = [delivery('a', 0, 1, 1000, 1), delivery('a', 0, 2, 7000, 2)];
    expect(verdict(deliveries, { killed: new Map([[1, 1200]]) })).toMatchObject({
      unexplained: 0,
      undone: 0,
    });
    expect(verdict(deliveries, { ackFailed: new Set(['0:1']) })).toMatchObject({ unexplained: 0, undone: 0 });
    const twoIds = [delivery('a', 0, 1, 1000, 1), delivery('b', 0, 1, 1100, 2)];
    expect(verdict(twoIds)).toMatchObject({ duplicates: 1, unexplained: 0, early: 0 });
  });
});
