import type { Context } from '../lib/context.js';
export async function scaleSuite(_ctx: Context): Promise<void> {}
