import type { TokenDriver } from '../../driver.js';
import type { StoreDeps } from './deps.js';

export function hybridTokens({ router: { read, readOwn }, write }: StoreDeps): TokenDriver {
  return {
    // The insert and a revoke of its issuer meet on the one backend serving authentication,
    // which keeps them atomic; a replay under an issuer revoked meanwhile inserts nothing.
    insert: (token) =>
      write(
        'authentication',
        'tokens.insert',
        (d) => d.tokens.insert(token),
        (_d, inserted) => (inserted ? [{ t: 'token', token }] : []),
        // Nobody holds an unacknowledged token; its record must not verify on the fallback.
        { undo: async (d, inserted) => inserted && d.tokens.revoke(token.id), undoSafeUnderSync: true },
      ),
    findByHash: (hash) => readOwn('authentication', 'tokens.verify', (d) => d.tokens.findByHash(hash)),
    findById: (id) => readOwn('authentication', 'tokens.get', (d) => d.tokens.findById(id)),
    // Journaled even when the fallback did not know the token: it may live on the primary.
    revoke: (id) =>
      write(
        'authentication',
        'tokens.revoke',
        (d) => d.tokens.revoke(id),
        () => [{ t: 'revoke', id }],
      ),
    page: (after, limit, within) =>
      read('authentication', 'tokens.list', (d) => d.tokens.page(after, limit, within)),
  };
}
