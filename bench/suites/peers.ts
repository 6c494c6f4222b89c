import type { Context } from '../lib/context.js';
export async function peersSuite(_ctx: Context): Promise<void> {}
