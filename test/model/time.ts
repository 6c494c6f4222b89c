/**
 * Real time in the models, with margins instead of exact sleeps: a call's effect happened at
 * some moment inside the window it ran in (`Date.now()` before and after), so a deadline it set
 * is known only within bounds, and a later read can tell it passed (or not) only when the read's
 * window lies wholly after (or before) those bounds. In between the model accepts either answer
 * and learns from the one it got.
 */

/**
 * Milliseconds a backend's clock may disagree with this process's about one moment: Redis keeps
 * milliseconds, PostgreSQL's `now()` is its transaction's start, timestamps are truncated to ms.
 */
export const SLACK_MS = 15;

/** When a call ran: `Date.now()` just before it and just after it answered. */
export interface Window {
  start: number;
  end: number;
}

/** When something happens (a key expires, a lease ends), known within `[min, max]`. */
export interface Deadline {
  min: number;
  max: number;
}

/** `ms` after a call that ran in `window`. */
export function after(window: Window, ms: number): Deadline {
  return { min: window.start + ms - SLACK_MS, max: window.end + ms + SLACK_MS };
}

/** Already true when the call that caused it answered (a message sent without delay is visible). */
export function by(window: Window): Deadline {
  return { min: Number.NEGATIVE_INFINITY, max: window.end };
}

export type Phase = 'pending' | 'passed' | 'unsure';

/** Whether `deadline` had passed for a call that ran in `window`: for sure, not for sure, or either. */
export function phase(deadline: Deadline, window: Window): Phase {
  if (deadline.max <= window.start) return 'passed';
  if (deadline.min > window.end) return 'pending';
  return 'unsure';
}

/** Times `call`: its outcome (value or error) and the window it ran in. */
export async function timed<T>(call: () => Promise<T>): Promise<{ window: Window } & Outcome<T>> {
  const start = Date.now();
  try {
    const value = await call();
    return { window: { start, end: Date.now() }, ok: true, value };
  } catch (error) {
    return { window: { start, end: Date.now() }, ok: false, error };
  }
}

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** A command's outcome did not match the model: the message says what each side had. */
export class Divergence extends Error {
  constructor(command: unknown, message: string) {
    super(`${JSON.stringify(command)}: ${message}`);
    this.name = 'Divergence';
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** How long a `wait` command sleeps: longer than the short TTLs and leases, so they pass. */
export const WAIT_MS = 150;
/** The short TTL, lease or delay of the commands (seconds); the long one never passes in a run. */
export const SHORT_S = 0.1;
export const LONG_S = 1000;
