import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Storage } from '../../lib/storage/types.js';

/**
 * A PostgreSQL storage on the `pg` driver whose server is not there: the caller has already
 * replaced what answers it (a protocol stream, or the pool itself). Its lib/ is this checkout's,
 * or `checkout`'s (an older commit, to compare), the first command-line argument of the tools.
 */
export async function pgStorageWithoutServer(checkout = process.argv[2]): Promise<Storage> {
  const tree = checkout ? resolve(checkout) : resolve(import.meta.dirname, '../..');
  const { createStorage } = await import(pathToFileURL(`${tree}/lib/storage/index.ts`).href);
  return createStorage({
    backend: 'postgresql',
    postgresql: {
      driver: 'pg',
      url: 'postgres://x@127.0.0.1:1/x',
      schema: 'js',
      migrate: false,
      pooler: 'transaction',
      preparedStatements: true,
      listen: false,
    },
  });
}
