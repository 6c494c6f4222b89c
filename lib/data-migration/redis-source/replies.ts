/**
 * Redis replies decoded in one place: pipelines and scripts answer `unknown`, and each reader
 * turns what it got into typed values here, so a reply of an unexpected shape is an error that
 * says so rather than a wrong record.
 */
import type { Redis } from 'ioredis';

export type Pipeline = ReturnType<Redis['pipeline']>;

/** A Redis reply that is not what the key layout promises. */
export class UnexpectedReplyError extends Error {
  constructor(what: string, reply: unknown) {
    super(`unexpected Redis reply for ${what}: ${JSON.stringify(reply)?.slice(0, 200)}`);
    this.name = 'UnexpectedReplyError';
  }
}

/** Runs a pipeline and answers its replies; the first failed command fails it all. */
export async function exec(pipeline: Pipeline): Promise<unknown[]> {
  const results = await pipeline.exec();
  if (!results) throw new Error('Connection is closed.');
  return results.map(([error, reply]) => {
    if (error) throw error;
    return reply;
  });
}

/** A bulk string or nil. */
export function text(reply: unknown, what = 'a string'): string | null {
  if (reply === null || typeof reply === 'string') return reply;
  throw new UnexpectedReplyError(what, reply);
}

/** An array of bulk strings or nils (HMGET, a script's flat answer). */
export function texts(reply: unknown, what = 'strings'): (string | null)[] {
  if (!Array.isArray(reply)) throw new UnexpectedReplyError(what, reply);
  return reply.map((item) => text(item, what));
}

/** An array of bulk strings (SMEMBERS). */
export function members(reply: unknown, what = 'members'): string[] {
  if (!Array.isArray(reply) || !reply.every((item) => typeof item === 'string'))
    throw new UnexpectedReplyError(what, reply);
  return reply;
}

/** TIME's [seconds, microseconds] as epoch ms: the server's clock, not the client's. */
export function serverMs(reply: unknown): number {
  const [seconds, micros] = texts(reply, 'TIME');
  if (seconds == null || micros == null) throw new UnexpectedReplyError('TIME', reply);
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

/** A stream entry: its id and its fields as a map. */
export interface StreamEntry {
  id: string;
  fields: Record<string, string>;
}

/** One XRANGE entry `[id, [field, value, …]]`. */
export function streamEntry(reply: unknown): StreamEntry {
  if (!Array.isArray(reply) || typeof reply[0] !== 'string') throw new UnexpectedReplyError('XRANGE', reply);
  const flat = members(reply[1], 'XRANGE');
  const fields: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
  return { id: reply[0], fields };
}

/** `'' | nil` → null: optional fields are stored as empty strings. */
export const nullable = (value: string | null | undefined): string | null =>
  value === '' || value == null ? null : value;

/** The sequence part of a stream id `<seq>-<n>`. */
export const streamSeq = (id: string): number => Number(id.slice(0, id.indexOf('-')));
