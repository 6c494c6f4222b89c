/**
 * The YAML side of the configuration file: its text → plain values and the line of every
 * node. The rest of the loader works on this document, never on YAML, so a packaged function
 * can carry the document of its configuration file as read at package time instead of a YAML
 * parser (deploy/esbuild-plugins.cjs replaces this module there).
 */
import { isMap, isNode, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';

/** A configuration file's content, before `${VAR}` references are resolved. */
export interface ConfigDocument {
  /** The file's plain value (mappings as objects, sequences as arrays); null when empty. */
  value: unknown;
  /** Dotted path (`redis.url`, `hybrid.fallback.order.1`) → the 1-based line of its value. */
  lines: Record<string, number>;
  /** YAML syntax problems (`config.yaml:3:1: …`); when any, `value` is null. */
  problems: string[];
}

/** Reads the text of a configuration file named `source` (in messages). Does not throw. */
export function readConfigDocument(text: string, source: string): ConfigDocument {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((error) => {
      const at = error.linePos?.[0];
      const message = error.message.replace(/ at line \d+, column \d+[\s\S]*$/, '');
      return at ? `${source}:${at.line}:${at.col}: ${message}` : `${source}: ${message}`;
    });
    return { value: null, lines: {}, problems };
  }
  const lines: Record<string, number> = {};
  // The paths `where()` looks up as YAML's getIn(path.split('.')) would find them: string keys
  // of mappings (a key holding a dot cannot be named so), indexes of sequences, first key wins.
  const visit = (node: unknown, path: string): void => {
    if (!isNode(node)) return;
    const offset = (node as Node).range?.[0];
    if (path !== '' && offset !== undefined) lines[path] = counter.linePos(offset).line;
    const prefix = path === '' ? '' : `${path}.`;
    if (isMap(node)) {
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? pair.key.value : pair.key;
        if (typeof key !== 'string' || key.includes('.') || `${prefix}${key}` in lines) continue;
        visit(pair.value, `${prefix}${key}`);
      }
    } else if (isSeq(node)) {
      for (const [i, item] of node.items.entries()) visit(item, `${prefix}${i}`);
    }
  };
  visit(doc.contents, '');
  return { value: doc.toJS({ maxAliasCount: 100 }) ?? null, lines, problems: [] };
}
