/** The audit log: checks and defaults in front of the driver's. */
import { ValidationError } from '../../errors.js';
import type { AuditDriver } from '../driver.js';
import { checkListLimit } from '../paging.js';
import type { AuditStore } from '../types.js';
import {
  checkDate,
  checkName,
  checkOptionalName,
  checkOptions,
  describe,
  serializeJsonObject,
} from '../validate.js';

const ENTRY_FIELDS = ['identity', 'action', 'resource', 'correlationId', 'outcome', 'details'] as const;

export function createAuditStore(driver: AuditDriver, maxBytes: number): AuditStore {
  return {
    async append(entry) {
      const e = checkOptions('entry', entry, ENTRY_FIELDS);
      if (entry === undefined) throw new ValidationError('entry', 'is required');
      const outcome = e.outcome ?? 'ok';
      if (outcome !== 'ok' && outcome !== 'denied' && outcome !== 'error') {
        throw new ValidationError('entry.outcome', `must be ok, denied or error, got ${describe(outcome)}`);
      }
      return driver.append({
        identity: checkName('entry.identity', e.identity),
        action: checkName('entry.action', e.action),
        resource: checkOptionalName('entry.resource', e.resource) ?? null,
        correlationId: checkOptionalName('entry.correlationId', e.correlationId) ?? null,
        outcome,
        detailsJson:
          e.details === undefined ? null : serializeJsonObject('entry.details', e.details, maxBytes),
      });
    },
    async query(query) {
      const q = checkOptions('query', query, ['identity', 'since', 'until', 'limit', 'order']);
      const order = q.order ?? 'desc';
      if (order !== 'asc' && order !== 'desc')
        throw new ValidationError('query.order', 'must be asc or desc');
      return driver.query({
        identity: checkOptionalName('query.identity', q.identity),
        sinceMs: q.since === undefined ? undefined : checkDate('query.since', q.since).getTime(),
        untilMs: q.until === undefined ? undefined : checkDate('query.until', q.until).getTime(),
        limit: checkListLimit('query.limit', q.limit),
        order,
      });
    },
  };
}
