/** Per-socket state of `isQueryWrite`; start with `{ written: 0 }`. */
export interface WireState {
  written: number;
  [more: string]: unknown;
}

export function isQueryWrite(wire: 'pg' | 'neon' | 'redis', bytes: Buffer, state: WireState): boolean;
