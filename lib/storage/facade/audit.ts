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
      const checked = checkOptions('entry', entry, ENTRY_FIELDS);
      if (entry === undefined) throw new ValidationError('entry', 'is required');
      const outcome = checked.outcome ?? 'ok';
      if (outcome !== 'ok' && outcome !== 'denied' && outcome !== 'error') {
        throw new ValidationError('entry.outcome', `must be ok, denied or error, got ${describe(outcome)}`);
      }
      return driver.append({
        identity: checkName('entry.identity', checked.identity),
        action: checkName('entry.action', checked.action),
        resource: checkOptionalName('entry.resource', checked.resource) ?? null,
        correlationId: checkOptionalName('entry.correlationId', checked.correlationId) ?? null,
        outcome,
        detailsJson:
          checked.details === undefined
            ? null
            : serializeJsonObject('entry.details', checked.details, maxBytes),
      });
    },
    async query(query) {
      const checked = checkOptions('query', query, ['identity', 'since', 'until', 'limit', 'order']);
      const order = checked.order ?? 'desc';
      if (order !== 'asc' && order !== 'desc')
        throw new ValidationError('query.order', 'must be asc or desc');
      return driver.query({
        identity: checkOptionalName('query.identity', checked.identity),
        sinceMs: checked.since === undefined ? undefined : checkDate('query.since', checked.since).getTime(),
        untilMs: checked.until === undefined ? undefined : checkDate('query.until', checked.until).getTime(),
        limit: checkListLimit('query.limit', checked.limit),
        order,
      });
    },
  };
}
