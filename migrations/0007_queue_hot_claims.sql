-- Claims as HOT updates. A claim (and a lease's extend or ack) writes only `attempts`,
-- `receipt` and `visible_at`; no index covers them any more, so PostgreSQL keeps the new row
-- version on the same page and adds no index entries (a heap-only tuple, pruned on the next
-- visit to the page, without vacuum). For that:
-- * a message that is leased keeps its `state`: a lease is `receipt IS NOT NULL` (a `state` of
--   'leased', written before this file and by the data migration, means the same);
-- * one index serves every claim: the queue's live messages in FIFO order. A claim walks it from
--   the head past messages still leased or delayed and takes the first visible ones. Ended
--   leases are in FIFO place again, as the contract orders them.
-- * free room on every page (fillfactor) for the new row versions of the messages it holds.
-- Only a death (`state` becomes 'dead') and the delete of an ack touch the indexes.
-- The number 0006 is left to the queue-consumers registry.

ALTER TABLE queues SET (fillfactor = 70);
CREATE INDEX queues_live ON queues (queue, seq) WHERE state <> 'dead';
DROP INDEX queues_ready;
DROP INDEX queues_delayed;
DROP INDEX queues_leased;
