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
  const loadOf = (registry: QueueRegistry, nowMs: number) => {
    const load = new Map<string, number>();
    for (const [key, d] of registry.deliveries) {
      if (d.leaseEndsMs <= nowMs) registry.deliveries.delete(key);
      else load.set(d.connectionId, (load.get(d.connectionId) ?? 0) + 1);
    }
    return load;
  };
  const end = (queue: string, connectionId: string, nowMs: number): HeldDelivery[] => {
    const registry = registries.get(queue);
    if (!registry) return [];
    const held: HeldDelivery[] = [];
    for (const [key, delivery] of registry.deliveries) {
      if (delivery.connectionId !== connectionId) continue;
      registry.deliveries.delete(key);
      if (delivery.receipt !== '' && delivery.leaseEndsMs > nowMs)
        held.push({ queue, connectionId, id: key, receipt: delivery.receipt });
    }
    registry.consumers.delete(connectionId);
    if (registry.consumers.size === 0 && registry.deliveries.size === 0) registries.delete(queue);
    return held.sort((a, b) => compareBytes(a.id, b.id));
  };
  return {
    async register(queue, connectionId, max, visibilityMs) {
      const queueRegistry = registry(queue);
      const earlier = queueRegistry.consumers.get(connectionId);
      queueRegistry.consumers.set(connectionId, {
        max,
        visibilityMs,
        lastClaimMs: earlier?.lastClaimMs ?? 0,
      });
    },
    async claim(queue, slot, nowMs) {
      const registry = registries.get(queue);
      if (!registry) return undefined;
      const load = loadOf(registry, nowMs);
      let best: [string, Consumer, number] | undefined;
      for (const [connectionId, consumer] of registry.consumers) {
        const held = load.get(connectionId) ?? 0;
        if (held >= consumer.max) continue;
        if (
          !best ||
          held < best[2] ||
          (held === best[2] &&
            (consumer.lastClaimMs < best[1].lastClaimMs ||
              (consumer.lastClaimMs === best[1].lastClaimMs && compareBytes(connectionId, best[0]) < 0)))
        )
          best = [connectionId, consumer, held];
      }
      if (!best) return undefined;
      const [connectionId, consumer] = best;
      consumer.lastClaimMs = nowMs;
      registry.deliveries.set(slot, {
        connectionId,
        receipt: '',
        leaseEndsMs: nowMs + consumer.visibilityMs,
      });
      return { connectionId, visibilityMs: consumer.visibilityMs };
    },
    async bind(queue, slot, id, receipt, leaseEndsMs) {
      const registry = registries.get(queue);
      const pending = registry?.deliveries.get(slot);
      if (!registry || !pending) return false;
      registry.deliveries.delete(slot);
      registry.deliveries.set(id, { connectionId: pending.connectionId, receipt, leaseEndsMs });
      return true;
    },
    async release(queue, key) {
      const registry = registries.get(queue);
      const delivery = registry?.deliveries.get(key);
      if (!registry || !delivery) return undefined;
      registry.deliveries.delete(key);
      return delivery.connectionId;
    },
    async extend(queue, id, leaseEndsMs) {
      const delivery = registries.get(queue)?.deliveries.get(id);
      if (!delivery) return false;
      delivery.leaseEndsMs = leaseEndsMs;
      return true;
    },
    stop: async (queue, connectionId, nowMs) => end(queue, connectionId, nowMs),
    async removeConnection(connectionId, nowMs) {
      const held: HeldDelivery[] = [];
      for (const [queue, queueRegistry] of [...registries]) {
        if (
          queueRegistry.consumers.has(connectionId) ||
          [...queueRegistry.deliveries.values()].some((d) => d.connectionId === connectionId)
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
      const registry = registries.get(queue);
      if (!registry) return [];
      loadOf(registry, nowMs);
      return [...registry.consumers]
        .sort(([a], [b]) => compareBytes(a, b))
        .map(([connectionId, consumer]) => ({
          connectionId,
          queue,
          max: consumer.max,
          visibilityTimeout: consumer.visibilityMs / 1000,
          inFlight: [...registry.deliveries]
            .filter(([, d]) => d.connectionId === connectionId && d.receipt !== '')
            .map(([key]) => key)
            .sort(compareBytes),
        }));
    },
  };
}
