import type { Context } from '../lib/context.js';
export async function lambdaSuite(_ctx: Context): Promise<void> {}
