import type { HybridContext } from '../context.js';
import type { Router } from '../router.js';
import type { Write } from '../writer.js';

/** What every hybrid store is built from: reads go through the router, writes through the writer. */
export interface StoreDeps {
  ctx: HybridContext;
  router: Router;
  write: Write;
}
