/**
 * The `limit` and `cursor` query parameters of a paged route (docs/api.md), as lib's page options,
 * and lib's refusals of them as errors naming the query parameter.
 */
import { ValidationError } from '../../lib/errors.js';
import { MAX_LIST_LIMIT } from '../../lib/limits.js';
import type { PageOptions } from '../../lib/storage/types.js';
import type { PageQuery } from './routes.js';

/** `limit` (the route schema has checked it is digits) and `cursor` as `PageOptions`. */
export function pageOptions(query: PageQuery): Pick<PageOptions, 'limit' | 'cursor'> {
  const options: Pick<PageOptions, 'limit' | 'cursor'> = {};
  if (query.limit !== undefined) {
    const limit = Number(query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
      throw new ValidationError(
        'limit',
        `must be an integer from 1 to ${MAX_LIST_LIMIT}, got ${query.limit}`,
      );
    }
    options.limit = limit;
  }
  if (query.cursor !== undefined) options.cursor = query.cursor;
  return options;
}

/**
 * Runs a page read; a refused cursor (lib names it `options.cursor`) becomes a `ValidationError`
 * on the query parameter, saying where a cursor comes from.
 */
export async function readPage<T>(route: string, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (error) {
    if (error instanceof ValidationError && error.field === 'options.cursor') {
      throw new ValidationError('cursor', `is not a cursor answered by an earlier page of ${route}`);
    }
    throw error;
  }
}
