import { isoTime as iso, type TokenDriver } from '../../driver.js';
import { pageOf, parseTokenPosition, tokenPosition } from '../../paging.js';
import type { Scope, TokenInfo } from '../../types.js';
import { likePatterns } from '../like.js';
import { ms, nullableMs, num, type StoreContext } from './context.js';

type TokenRow = {
  id: string;
  hash: string;
  identity: string;
  scopes: string[];
  resources: string[];
  created: number;
  expires: number | null;
  issuer_id: string | null;
};

/** Times a revoke that met a deadlock (two revokes of overlapping trees) runs again. */
const REVOKE_ATTEMPTS = 3;

/**
 * Tokens and their lineage (0004_token_lineage.sql). An insert under an issuer takes a share lock
 * on the issuer's live row in the same statement; a revoke locks every row of the tree below the
 * token (`FOR UPDATE`, which that share lock waits for) before deleting it. So an insert either
 * commits before the revoke locks its issuer — and the revoke, walking again after its locks,
 * finds the new token — or waits and then finds its issuer gone.
 */
export function pgTokens(ctx: StoreContext): TokenDriver {
  const { table, query, transaction } = ctx;
  const tokens = table('tokens');
  const LIVE = '(expires_at IS NULL OR expires_at > now())';
  const COLUMNS = `id, hash, identity, scopes, resources, ${ms('created_at')} AS created, ${ms('expires_at')} AS expires, issuer_id`;
  const info = (row: TokenRow): TokenInfo => ({
    id: row.id,
    identity: row.identity,
    scopes: row.scopes as Scope[],
    resources: row.resources,
    createdAt: iso(num(row.created)),
    expiresAt: nullableMs(row.expires),
    issuerId: row.issuer_id,
  });
  const INSERT = `INSERT INTO ${tokens} (id, hash, identity, scopes, resources, created_at, expires_at, issuer_id)`;
  const VALUES = '$1, $2, $3, $4::text[], $5::text[], $6::timestamptz, $7::timestamptz';
  /** Locks the rows of the tree below `$1` (those a concurrent revoke has not deleted), in id order. */
  const LOCK_TREE = `WITH RECURSIVE tree(id) AS (
      SELECT $1::text COLLATE "C"
      UNION
      SELECT c.id FROM ${tokens} c JOIN tree ON c.issuer_id = tree.id
    )
    SELECT id FROM ${tokens} WHERE id IN (SELECT id FROM tree) ORDER BY id FOR UPDATE`;

  const revokeOnce = (id: string) =>
    transaction(async (tx) => {
      // Each walk is a new snapshot (READ COMMITTED) taken after the previous walk's locks: a
      // token inserted under a locked row committed before that lock, so the next walk sees it.
      // Locked rows stay, so the tree only grows; it is whole once a walk finds nothing new.
      let locked = 0;
      let tree: string[] = [];
      for (;;) {
        tree = (await tx.query<{ id: string }>(LOCK_TREE, [id])).map((r) => r.id);
        if (tree.length === locked) break;
        locked = tree.length;
      }
      if (tree.length === 0) return [];
      const rows = await tx.query<{ id: string; live: boolean }>(
        `DELETE FROM ${tokens} WHERE id = ANY($1::text[]) RETURNING id, ${LIVE} AS live`,
        [tree],
      );
      if (!rows.some((r) => r.id === id && r.live)) return [];
      return [id, ...rows.filter((r) => r.live && r.id !== id).map((r) => r.id)];
    });

  return {
    async insert(token) {
      const params = [
        token.id,
        token.hash,
        token.identity,
        token.scopes,
        token.resources,
        token.createdAt,
        token.expiresAt,
      ];
      if (token.issuerId === null) {
        await query(`${INSERT} VALUES (${VALUES}, NULL)`, params);
        return true;
      }
      const inserted = await query(
        `WITH issuer AS (SELECT id FROM ${tokens} WHERE id = $8 AND ${LIVE} FOR KEY SHARE)
         ${INSERT} SELECT ${VALUES}, issuer.id FROM issuer RETURNING 1`,
        [...params, token.issuerId],
      );
      return inserted.length === 1;
    },
    async findByHash(hash) {
      const [row] = await query<TokenRow>(`SELECT ${COLUMNS} FROM ${tokens} WHERE hash = $1 AND ${LIVE}`, [
        hash,
      ]);
      return row && { ...info(row), hash: row.hash };
    },
    async findById(id) {
      const [row] = await query<TokenRow>(`SELECT ${COLUMNS} FROM ${tokens} WHERE id = $1 AND ${LIVE}`, [id]);
      return row && info(row);
    },
    async revoke(id) {
      for (let attempt = 1; ; attempt++) {
        try {
          return await revokeOnce(id);
        } catch (error) {
          const state = (error as { cause?: { code?: unknown } }).cause?.code;
          if (state !== '40P01' || attempt >= REVOKE_ATTEMPTS) throw error;
        }
      }
    },
    async page(after, limit, within) {
      const params: unknown[] = [limit + 1];
      const where = [LIVE];
      if (after !== undefined) {
        const { createdAt, id } = parseTokenPosition(after);
        params.push(createdAt, id);
        where.push(`(created_at, id) > ($${params.length - 1}::timestamptz, $${params.length}::text)`);
      }
      if (within !== undefined) {
        params.push(likePatterns(within));
        // Every glob of the token, read as text, matched by one of the caller's (lineage.covers).
        where.push(
          `NOT EXISTS (SELECT 1 FROM unnest(resources) r WHERE NOT (r LIKE ANY($${params.length}::text[])))`,
        );
      }
      const rows = await query<TokenRow>(
        `SELECT ${COLUMNS} FROM ${tokens} WHERE ${where.join(' AND ')} ORDER BY created_at, id LIMIT $1`,
        params,
      );
      return pageOf(rows.map(info), limit, tokenPosition);
    },
  };
}
