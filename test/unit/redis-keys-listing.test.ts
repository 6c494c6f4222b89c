/**
 * The data migration finds queues, channels and dedup ids by parsing the keys SCAN lists
 * (lib/storage/redis/keys.ts splitTaggedKey): parsing must invert the builders for any name,
 * including ones holding the tag's own characters.
 */
import { describe, expect, it } from 'vitest';
import {
  eventHead,
  eventKeys,
  queueHead,
  queueKeys,
  splitTaggedKey,
  TAGGED_TAILS,
} from '../../lib/storage/redis/keys.js';

const NAMES = ['jobs', 'a}:dd:z', '{x}', '100%', 'with space', 'é', ''];
const PREFIX = 'kubently:';

describe('splitTaggedKey', () => {
  it.each(NAMES)('gives back the queue name %j and the tail of each of its keys', (name) => {
    const keys = queueKeys(PREFIX, name);
    expect(splitTaggedKey(queueHead(PREFIX), keys.seq)).toEqual({ name, tail: TAGGED_TAILS.queueSeq });
    expect(splitTaggedKey(queueHead(PREFIX), keys.dedup('d:1}'))).toEqual({
      name,
      tail: `${TAGGED_TAILS.dedup}d:1}`,
    });
  });

  it.each(NAMES)('gives back the channel name %j from its counter key', (name) => {
    expect(splitTaggedKey(eventHead(PREFIX), eventKeys(PREFIX, name).counter)).toEqual({
      name,
      tail: TAGGED_TAILS.eventCounter,
    });
  });

  it('answers undefined for keys not under the head or without a closed tag', () => {
    expect(splitTaggedKey(queueHead(PREFIX), 'other:{q:jobs}:seq')).toBeUndefined();
    expect(splitTaggedKey(queueHead(PREFIX), `${PREFIX}{q:jobs`)).toBeUndefined();
    expect(splitTaggedKey(queueHead(PREFIX), `${PREFIX}{q:jobs}seq`)).toBeUndefined();
  });
});
