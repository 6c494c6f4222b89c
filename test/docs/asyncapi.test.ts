/**
 * asyncapi.yaml (the WebSocket API in AsyncAPI 3) against the frames the code defines: every
 * client action and every server frame type, with the same fields and the same optionality, and
 * the error frame's codes. The code's frames are read with the TypeScript compiler from the type
 * aliases named `…Frame` under functions/ (a union of objects, each with a string-literal
 * `action` or `type`), wherever they live. Plus the document's own structure: every reference
 * resolves, every client action is an operation with its replies, every example fits its schema.
 *
 * The document was checked with @asyncapi/parser 3.6.6 (valid AsyncAPI 3.0.0); the parser is
 * not a dependency: its tree runs an install-time telemetry script (@scarf/scarf).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** A frame: `action:subscribe` or `type:message` → its fields (discriminant included) and whether each is required. */
type Frames = Map<string, Map<string, boolean>>;

interface Schema {
  type?: string;
  const?: string;
  enum?: string[];
  required?: string[];
  properties?: Record<string, Schema>;
  additionalProperties?: boolean;
  $ref?: string;
}
interface Message {
  name: string;
  payload: Schema;
  examples?: { payload: Record<string, unknown> }[];
}
interface Operation {
  action: 'send' | 'receive';
  channel: { $ref: string };
  messages: { $ref: string }[];
  reply?: { channel: { $ref: string }; messages: { $ref: string }[] };
}
interface AsyncApi {
  asyncapi: string;
  channels: Record<string, { messages: Record<string, { $ref: string }> }>;
  operations: Record<string, Operation>;
  components: { messages: Record<string, Message>; schemas: Record<string, Schema> };
}

const doc = parse(readFileSync(join(root, 'asyncapi.yaml'), 'utf8')) as AsyncApi;

function resolveRef(ref: string): unknown {
  expect(ref.startsWith('#/'), ref).toBe(true);
  let node: unknown = doc;
  for (const part of ref.slice(2).split('/')) node = (node as Record<string, unknown> | undefined)?.[part];
  // A channel's message is itself a reference to components.messages.
  const next = (node as { $ref?: unknown } | undefined)?.$ref;
  return typeof next === 'string' ? resolveRef(next) : node;
}

/** The document's frames, keyed like the code's. */
function documentedFrames(): Frames {
  const frames: Frames = new Map();
  for (const message of Object.values(doc.components.messages)) {
    const { properties = {}, required = [] } = message.payload;
    const discriminant = properties.action?.const !== undefined ? 'action' : 'type';
    const fields = new Map(Object.keys(properties).map((field) => [field, required.includes(field)]));
    frames.set(`${discriminant}:${properties[discriminant]?.const}`, fields);
  }
  return frames;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

let fromCode: { frames: Frames; errorCodes: string[] } | undefined;

/** The code's frames, and the literal codes the error frame's `code` may take (read once: it takes seconds). */
function codeFrames(): { frames: Frames; errorCodes: string[] } {
  fromCode ??= readCodeFrames();
  return fromCode;
}

function readCodeFrames(): { frames: Frames; errorCodes: string[] } {
  const files = sourceFiles(join(root, 'functions'));
  const program = ts.createProgram(files, {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
  });
  const checker = program.getTypeChecker();
  const frames: Frames = new Map();
  let errorCodes: string[] = [];
  const literals = (type: ts.Type) =>
    (type.isUnion() ? type.types : [type]).filter((t) => t.isStringLiteral()).map((t) => t.value);

  for (const file of files) {
    const source = program.getSourceFile(file)!;
    source.forEachChild(function visit(node) {
      if (!ts.isTypeAliasDeclaration(node) || !node.name.text.endsWith('Frame')) return;
      const type = checker.getTypeAtLocation(node.name);
      for (const member of type.isUnion() ? type.types : [type]) {
        const discriminant = ['action', 'type'].find((name) => member.getProperty(name));
        if (!discriminant) continue;
        const property = member.getProperty(discriminant)!;
        for (const value of literals(checker.getTypeOfSymbolAtLocation(property, node))) {
          const fields = new Map(
            member
              .getProperties()
              .map((p) => [p.name, (p.flags & ts.SymbolFlags.Optional) === 0] as [string, boolean]),
          );
          frames.set(`${discriminant}:${value}`, fields);
          if (discriminant === 'type' && value === 'error') {
            errorCodes = literals(checker.getTypeOfSymbolAtLocation(member.getProperty('code')!, node));
          }
        }
      }
    });
  }
  return { frames, errorCodes };
}

describe('asyncapi.yaml', { timeout: 60_000 }, () => {
  it('is an AsyncAPI 3 document whose every reference resolves', () => {
    expect(doc.asyncapi).toMatch(/^3\./);
    const refs = JSON.stringify(doc).matchAll(/"\$ref":"([^"]+)"/g);
    for (const [, ref] of refs) expect(resolveRef(ref!), ref).toBeDefined();
    // Every message is on the connection's channel.
    const onChannel = Object.values(doc.channels).flatMap((channel) =>
      Object.values(channel.messages).map((m) => m.$ref.split('/').at(-1)),
    );
    expect(onChannel.sort()).toEqual(Object.keys(doc.components.messages).sort());
  });

  it('every client action is an operation the API receives, answered by its frame or an error', () => {
    const actions = [...documentedFrames().keys()].filter((key) => key.startsWith('action:'));
    for (const key of actions) {
      const name = key.slice('action:'.length);
      const operation = doc.operations[name];
      expect(operation, `operation ${name}`).toBeDefined();
      expect(operation!.action).toBe('receive');
      const sent = operation!.messages.map((m) => (resolveRef(m.$ref) as Message).name);
      expect(sent).toEqual([name]);
      expect(operation!.reply?.messages.length, `${name} has replies`).toBeGreaterThan(0);
    }
    const served = Object.values(doc.operations).flatMap((operation) => [
      ...(operation.action === 'send' ? operation.messages : []),
      ...(operation.reply?.messages ?? []),
    ]);
    const types = new Set(served.map((m) => `type:${(resolveRef(m.$ref) as Message).name}`));
    const documentedTypes = [...documentedFrames().keys()].filter((key) => key.startsWith('type:'));
    expect([...types].sort()).toEqual(documentedTypes.sort());
  });

  it('every example fits its message: required fields present, no other fields, the discriminant right', () => {
    for (const [key, message] of Object.entries(doc.components.messages)) {
      const { properties = {}, required = [] } = message.payload;
      expect(message.payload.additionalProperties, key).toBe(false);
      expect(message.examples?.length, `${key} has an example`).toBeGreaterThan(0);
      for (const { payload } of message.examples ?? []) {
        for (const field of required) expect(payload, `${key} example`).toHaveProperty(field);
        for (const field of Object.keys(payload)) expect(Object.keys(properties), key).toContain(field);
        const discriminant = properties.action ? 'action' : 'type';
        expect(payload[discriminant]).toBe(message.name);
      }
    }
  });

  it('describes every frame the code defines, with the same fields, and no other', () => {
    const { frames: code } = codeFrames();
    const documented = documentedFrames();
    expect(code.size, 'frames found in functions/').toBeGreaterThan(0);
    for (const [key, fields] of code) {
      expect(documented.has(key), `${key} is in the code but not in asyncapi.yaml`).toBe(true);
      expect(Object.fromEntries(documented.get(key)!), `${key}: fields (true = required)`).toEqual(
        Object.fromEntries(fields),
      );
    }
    for (const key of documented.keys()) {
      expect(code.has(key), `${key} is in asyncapi.yaml but the code defines no such frame`).toBe(true);
    }
  });

  it("lists the error frame's codes as the code does", () => {
    const { errorCodes } = codeFrames();
    expect(errorCodes.length).toBeGreaterThan(0);
    expect([...(doc.components.schemas.errorCode?.enum ?? [])].sort()).toEqual([...errorCodes].sort());
  });

  it('is linked from docs/api.md, which names every client action', () => {
    const api = readFileSync(join(root, 'docs/api.md'), 'utf8');
    expect(api).toContain('](../asyncapi.yaml)');
    for (const key of documentedFrames().keys()) {
      if (!key.startsWith('action:')) continue;
      expect(api, key).toMatch(new RegExp(`"${key.slice('action:'.length)}"`));
    }
  });
});
