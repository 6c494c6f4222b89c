/**
 * Keyset paging, shared by every paged listing (tokens, active clusters, a channel's
 * subscribers): the options' checks and defaults, the opaque cursor, and the positions items
 * are ordered by. A page starts after a position, never at an offset, so items that come or go
 * during a walk cause no duplicates and no skips.
 */
import { ValidationError } from '../errors.js';
import { DEFAULT_LIST_LIMIT, MAX_GLOBS_PER_TOKEN, MAX_LIST_LIMIT } from '../limits.js';
import { checkInt, checkName, checkOptions, describe } from './validate.js';

/** Globs a filtered listing takes, at most (as many as a token may carry). */
export const MAX_PAGE_GLOBS = MAX_GLOBS_PER_TOKEN;
/**
 * Index entries one filtered page looks at, at most, where the backend filters after reading
 * (Redis): a page whose matches are sparse answers what it found and a cursor, rather than
 * reading the whole index in one call.
 */
export const PAGE_SCAN_BUDGET = 5000;

/** A page as a driver answers it: `next` is the position the next page starts after, or undefined at the end. */
export interface DriverPage<T> {
  items: T[];
  next: string | undefined;
}

export interface CheckedPage {
  /** Decoded cursor: the position to start after. */
  after: string | undefined;
  limit: number;
  /** `undefined` when everything is wanted (no globs, or a `*` among them). */
  within: string[] | undefined;
}

/**
 * Checks `options` of a paged listing. `position` checks a decoded cursor and answers it (or
 * throws); a cursor that does not decode is a `ValidationError` saying where cursors come from.
 */
export function checkPageOptions(
  options: unknown,
  listing: string,
  position: (text: string) => string,
): CheckedPage {
  const o = checkOptions('options', options, ['limit', 'cursor', 'within']);
  const limit = checkListLimit('options.limit', o.limit);
  const after =
    o.cursor === undefined ? undefined : decodeCursor('options.cursor', o.cursor, listing, position);
  const within = o.within === undefined ? undefined : checkWithin('options.within', o.within);
  return { after, limit, within: within?.includes('*') ? undefined : within };
}

/** A listing's optional `limit`: `DEFAULT_LIST_LIMIT` when absent, else an integer 1–`MAX_LIST_LIMIT`. */
export function checkListLimit(field: string, value: unknown): number {
  return value === undefined ? DEFAULT_LIST_LIMIT : checkInt(field, value, 1, MAX_LIST_LIMIT);
}

function checkWithin(field: string, value: unknown): string[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new ValidationError(field, `expected a non-empty array of glob patterns, got ${describe(value)}`);
  }
  if (value.length > MAX_PAGE_GLOBS) {
    throw new ValidationError(field, `at most ${MAX_PAGE_GLOBS} patterns, got ${value.length}`);
  }
  return value.map((glob, i) => checkName(`${field}[${i}]`, glob));
}

/** The cursor of a position: its UTF-8 bytes, base64url. Opaque to callers. */
export function encodeCursor(position: string): string {
  return Buffer.from(position, 'utf8').toString('base64url');
}

const CURSOR = /^[A-Za-z0-9_-]{1,700}$/;

/** The position a cursor encodes, checked by `position`; anything this code could not have written is refused. */
export function decodeCursor(
  field: string,
  value: unknown,
  listing: string,
  position: (text: string) => string,
): string {
  const invalid = () => new ValidationError(field, `is not a cursor answered by ${listing}`);
  if (typeof value !== 'string')
    throw new ValidationError(field, `expected a string, got ${describe(value)}`);
  if (!CURSOR.test(value)) throw invalid();
  const text = Buffer.from(value, 'base64url').toString('utf8');
  // Node decodes leniently: only a cursor this code could have written is accepted.
  if (text.length === 0 || encodeCursor(text) !== value) throw invalid();
  try {
    return position(text);
  } catch {
    throw invalid();
  }
}

/** A position that is a name (a cluster id, a connection id). */
export const namePosition = (text: string): string => checkName('position', text);

// ---------------------------------------------------------------------------------------
// tokens: ordered by creation time, then id

const ISO_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const ISO_LENGTH = 24;

/**
 * A token's place in list order: its creation time as ISO-8601 (fixed width, so the text sorts
 * as the time does), `|`, its id. Positions compare as bytes: time first, then id bytes, as
 * PostgreSQL orders `(created_at, id COLLATE "C")`.
 */
export function tokenPosition(token: { createdAt: string; id: string }): string {
  return `${token.createdAt}|${token.id}`;
}

export function parseTokenPosition(position: string): { createdAt: string; id: string } {
  const createdAt = position.slice(0, ISO_LENGTH);
  if (!ISO_MS.test(createdAt) || position[ISO_LENGTH] !== '|') {
    throw new ValidationError('position', 'not a token position');
  }
  return { createdAt, id: checkName('position', position.slice(ISO_LENGTH + 1)) };
}

/** Checks a decoded token cursor. */
export const tokenCursorPosition = (text: string): string => {
  parseTokenPosition(text);
  return text;
};

/** Every page of a listing, walked: for the convenience methods that answer everything. */
export async function walkPages<T>(
  page: (after: string | undefined) => Promise<DriverPage<T>>,
): Promise<T[]> {
  const all: T[] = [];
  let after: string | undefined;
  do {
    const { items, next } = await page(after);
    all.push(...items);
    after = next;
  } while (after !== undefined);
  return all;
}

/** The first `limit` of `items` (sorted, filtered, after the cursor) as a page. */
export function pageOf<T>(items: T[], limit: number, position: (item: T) => string): DriverPage<T> {
  const page = items.slice(0, limit);
  const last = page.at(-1);
  return { items: page, next: items.length > limit && last !== undefined ? position(last) : undefined };
}

/** One read of an index a backend filters after reading: what it found and where it stopped. */
export interface IndexRead<T> {
  /** Live items among the entries read, in index order. */
  items: T[];
  /** The position of the last entry read (the next read starts after it); undefined: none read. */
  last: string | undefined;
  /** Whether the index holds entries after `last`. */
  more: boolean;
}

/**
 * A page from an index read in steps (Redis): reads on until `limit` items pass `keep`, the index
 * ends, or `PAGE_SCAN_BUDGET` entries were read — then answers what it has, with `next` at the
 * last entry read, so the next page goes on from there.
 */
export async function readFiltered<T>(
  read: (after: string | undefined, count: number) => Promise<IndexRead<T>>,
  after: string | undefined,
  limit: number,
  keep: ((item: T) => boolean) | undefined,
  position: (item: T) => string,
): Promise<DriverPage<T>> {
  const kept: T[] = [];
  let from = after;
  let scanned = 0;
  for (;;) {
    // One more than the page, so a full page knows whether anything follows it.
    const wanted = limit + 1 - kept.length;
    const count = Math.min(keep === undefined ? wanted : MAX_LIST_LIMIT, PAGE_SCAN_BUDGET - scanned);
    const { items, last, more } = await read(from, count);
    scanned += count;
    for (const item of items) if (keep === undefined || keep(item)) kept.push(item);
    if (kept.length > limit) return pageOf(kept, limit, position);
    if (!more || last === undefined) return { items: kept, next: undefined };
    from = last;
    if (scanned >= PAGE_SCAN_BUDGET) return { items: kept, next: last };
  }
}
