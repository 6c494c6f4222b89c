/**
 * The custom metrics the code emits, read from the source (lib/, functions/) with TypeScript's
 * parser — not from lib/metrics.ts's catalog, so an alarm on a catalogued metric nothing emits
 * is caught too. Every emission goes through one of these calls:
 *
 * - `emitMetric({ name: 'X', …, dimensions: {…} })` and `report(sink, { name: 'X', …, dimensions })`
 * - `emitTogether([{ name: 'X', … }, …])` (no dimensions)
 * - the hybrid's `emit('X', value, unit, {…})`, also called as `ctx.emit(…)`
 *
 * A `dimensions` given by a variable is read from that variable's object literal; a `{ name }`
 * passed on from a parameter is plumbing (the hybrid's `emit` itself). A call of these forms whose
 * name or dimensions cannot be read makes `emittedMetrics` throw: the scan never silently misses one.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';

export interface EmittedMetric {
  name: string;
  /** Dimension names as emitted (without Powertools' `service`), sorted. */
  dimensions: string[];
  /** Where, `file:line`. */
  at: string;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith('.ts') && !path.endsWith('.d.ts') ? [path] : [];
  });
}

const propertyName = (property: ts.ObjectLiteralElementLike): string | undefined =>
  property.name && (ts.isIdentifier(property.name) || ts.isStringLiteral(property.name))
    ? property.name.text
    : undefined;

export function emittedMetrics(root: string): EmittedMetric[] {
  const found: EmittedMetric[] = [];
  for (const file of [...sourceFiles(join(root, 'lib')), ...sourceFiles(join(root, 'functions'))]) {
    const text = readFileSync(file, 'utf8');
    if (!/\b(emitMetric|emitTogether|emit|report)\(/.test(text)) continue;
    const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
    const where = (node: ts.Node) =>
      `${relative(root, file)}:${source.getLineAndCharacterOfPosition(node.getStart()).line + 1}`;
    const problem = (node: ts.Node, what: string) =>
      new Error(`${where(node)}: cannot read the metric's ${what}`);

    /** Object literal of `node`, following an identifier to its `const x = {…}`. */
    const objectOf = (node: ts.Node | undefined): ts.ObjectLiteralExpression | undefined => {
      if (!node) return undefined;
      if (ts.isObjectLiteralExpression(node)) return node;
      if (ts.isIdentifier(node)) {
        let literal: ts.ObjectLiteralExpression | undefined;
        const visit = (candidate: ts.Node) => {
          if (
            ts.isVariableDeclaration(candidate) &&
            ts.isIdentifier(candidate.name) &&
            candidate.name.text === node.text &&
            candidate.initializer &&
            ts.isObjectLiteralExpression(candidate.initializer) &&
            candidate.getStart() < node.getStart()
          ) {
            literal = candidate.initializer;
          }
          ts.forEachChild(candidate, visit);
        };
        visit(source);
        return literal;
      }
      return undefined;
    };
    const keysOf = (literal: ts.ObjectLiteralExpression) =>
      literal.properties.map((property) => {
        const name = ts.isShorthandPropertyAssignment(property) ? property.name.text : propertyName(property);
        if (name === undefined) throw problem(property, 'dimension names');
        return name;
      });
    /** A `{ name: 'X', …, dimensions? }` metric literal. */
    const fromLiteral = (literal: ts.ObjectLiteralExpression, dimensionsRequired: boolean) => {
      const get = (key: string) =>
        literal.properties.find(
          (property) =>
            propertyName(property) === key ||
            (ts.isShorthandPropertyAssignment(property) && property.name.text === key),
        );
      const name = get('name');
      // `{ name, … }` passes on a name it was given: the plumbing (the hybrid's `emit`), not an emission.
      if (name && ts.isShorthandPropertyAssignment(name)) return;
      if (!name || !ts.isPropertyAssignment(name) || !ts.isStringLiteral(name.initializer))
        throw problem(literal, 'name');
      const dimensions = get('dimensions');
      let keys: string[] = [];
      if (dimensions) {
        const value = ts.isShorthandPropertyAssignment(dimensions)
          ? dimensions.name
          : (dimensions as ts.PropertyAssignment).initializer;
        const object = objectOf(value);
        if (!object) throw problem(literal, 'dimensions');
        keys = keysOf(object);
      } else if (dimensionsRequired) throw problem(literal, 'dimensions');
      found.push({ name: name.initializer.text, dimensions: keys.sort(), at: where(literal) });
    };

    const visit = (node: ts.Node) => {
      // `emit(…)` or a context's `ctx.emit(…)`: the callee's own name decides the form.
      const callee =
        ts.isCallExpression(node) &&
        (ts.isIdentifier(node.expression)
          ? node.expression.text
          : ts.isPropertyAccessExpression(node.expression)
            ? node.expression.name.text
            : undefined);
      if (ts.isCallExpression(node) && callee) {
        const args = node.arguments;
        if (callee === 'emitMetric' && args[0] && ts.isObjectLiteralExpression(args[0]))
          fromLiteral(args[0], true);
        else if (callee === 'report' && args[1] && ts.isObjectLiteralExpression(args[1]))
          fromLiteral(args[1], true);
        else if (callee === 'emitTogether' && args[0] && ts.isArrayLiteralExpression(args[0])) {
          for (const element of args[0].elements) {
            if (!ts.isObjectLiteralExpression(element)) throw problem(element, 'entry');
            fromLiteral(element, false);
          }
        } else if (callee === 'emit' && args[0] && ts.isStringLiteral(args[0])) {
          const object = objectOf(args[3]);
          if (!object) throw problem(node, 'dimensions');
          found.push({ name: args[0].text, dimensions: keysOf(object).sort(), at: where(node) });
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return found;
}
