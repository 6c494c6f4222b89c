/**
 * The queue consumers' registry in process memory (driver.ts, `ConsumerDriver`). Every method
 * runs to completion without awaiting, so a claim is atomic.
 */

import type { ConsumerDriver } from '../driver.js';
import { compareBytes } from '../driver.js';
import type { HeldDelivery } from '../types.js';

interface Consumer {
  max: number;
  visibilityMs: number;
  lastClaimMs: number;
}

interface Delivery {
  connectionId: string;
  /** '' while the key is a slot not yet bound. */
  receipt: string;
  leaseEndsMs: number;
}

interface QueueRegistry {
  consumers: Map<string, Consumer>;
  /** By message id or slot id. */
  deliveries: Map<string, Delivery>;
}

export function memoryConsumers(): ConsumerDriver {
  const registries = new Map<string, QueueRegistry>();
  const registry = (queue: string) => {
    let found = registries.get(queue);
    if (!found) {
      found = { consumers: new Map(), deliveries: new Map() };
      registries.set(queue, found);
    }
    return found;
  };
  const loadOf = (r: QueueRegistry, nowMs: number) => {
    const load = new Map<string, number>();
    for (const [key, d] of r.deliveries) {
      if (d.leaseEndsMs <= nowMs) r.deliveries.delete(key);
      else load.set(d.connectionId, (load.get(d.connectionId) ?? 0) + 1);
    }
    return load;
  };
  const end = (queue: string, connectionId: string, nowMs: number): HeldDelivery[] => {
    const r = registries.get(queue);
    if (!r) return [];
    const held: HeldDelivery[] = [];
    for (const [key, d] of r.deliveries) {
      if (d.connectionId !== connectionId) continue;
      r.deliveries.delete(key);
      if (d.receipt !== '' && d.leaseEndsMs > nowMs)
        held.push({ queue, connectionId, id: key, receipt: d.receipt });
    }
    r.consumers.delete(connectionId);
    if (r.consumers.size === 0 && r.deliveries.size === 0) registries.delete(queue);
    return held.sort((a, b) => compareBytes(a.id, b.id));
  };
  return {
    async register(queue, connectionId, max, visibilityMs) {
      const r = registry(queue);
      const earlier = r.consumers.get(connectionId);
      r.consumers.set(connectionId, { max, visibilityMs, lastClaimMs: earlier?.lastClaimMs ?? 0 });
    },
    async claim(queue, slot, nowMs) {
      const r = registries.get(queue);
      if (!r) return undefined;
      const load = loadOf(r, nowMs);
      let best: [string, Consumer, number] | undefined;
      for (const [connectionId, c] of r.consumers) {
        const n = load.get(connectionId) ?? 0;
        if (n >= c.max) continue;
        if (
          !best ||
          n < best[2] ||
          (n === best[2] &&
            (c.lastClaimMs < best[1].lastClaimMs ||
              (c.lastClaimMs === best[1].lastClaimMs && compareBytes(connectionId, best[0]) < 0)))
        )
          best = [connectionId, c, n];
      }
      if (!best) return undefined;
      const [connectionId, consumer] = best;
      consumer.lastClaimMs = nowMs;
      r.deliveries.set(slot, { connectionId, receipt: '', leaseEndsMs: nowMs + consumer.visibilityMs });
      return { connectionId, visibilityMs: consumer.visibilityMs };
    },
    async bind(queue, slot, id, receipt, leaseEndsMs) {
      const r = registries.get(queue);
      const pending = r?.deliveries.get(slot);
      if (!r || !pending) return false;
      r.deliveries.delete(slot);
      r.deliveries.set(id, { connectionId: pending.connectionId, receipt, leaseEndsMs });
      return true;
    },
    async release(queue, key) {
      const r = registries.get(queue);
      const d = r?.deliveries.get(key);
      if (!r || !d) return undefined;
      r.deliveries.delete(key);
      return d.connectionId;
    },
    async extend(queue, id, leaseEndsMs) {
      const d = registries.get(queue)?.deliveries.get(id);
      if (!d) return false;
      d.leaseEndsMs = leaseEndsMs;
      return true;
    },
    stop: async (queue, connectionId, nowMs) => end(queue, connectionId, nowMs),
    async removeConnection(connectionId, nowMs) {
      const held: HeldDelivery[] = [];
      for (const [queue, r] of [...registries]) {
        if (
          r.consumers.has(connectionId) ||
          [...r.deliveries.values()].some((d) => d.connectionId === connectionId)
        )
          held.push(...end(queue, connectionId, nowMs));
      }
      return held;
    },
    async queues(limit) {
      return [...registries]
        .filter(([, r]) => r.consumers.size > 0)
        .map(([queue]) => queue)
        .sort(compareBytes)
        .slice(0, limit);
    },
    async connections(after, limit) {
      const ids = new Set<string>();
      for (const r of registries.values())
        for (const connectionId of r.consumers.keys()) ids.add(connectionId);
      return [...ids]
        .filter((id) => compareBytes(id, after) > 0)
        .sort(compareBytes)
        .slice(0, limit);
    },
    async list(queue, nowMs) {
      const r = registries.get(queue);
      if (!r) return [];
      loadOf(r, nowMs);
      return [...r.consumers]
        .sort(([a], [b]) => compareBytes(a, b))
        .map(([connectionId, c]) => ({
          connectionId,
          queue,
          max: c.max,
          visibilityTimeout: c.visibilityMs / 1000,
          inFlight: [...r.deliveries]
            .filter(([, d]) => d.connectionId === connectionId && d.receipt !== '')
            .map(([key]) => key)
            .sort(compareBytes),
        }));
    },
  };
}
