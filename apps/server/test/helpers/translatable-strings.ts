/**
 * The strings of the server a translator must cover, read from the source: the message of
 * every `new AppError(code, '…')` and every custom validation message of a schema
 * (`{ error: '…' }`, `message: '…'` of an issue) — what src/i18n answers from.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

const srcDir = path.join(import.meta.dirname, '../../src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

const literal = (node: ts.Node | undefined) =>
  node && (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) ? node.text : undefined;

export interface TranslatableStrings {
  /** The message templates of AppErrors, by file. */
  errorMessages: Map<string, string>;
  /** AppErrors whose message is not a literal (file:line and the expression). */
  dynamicErrorMessages: string[];
  /** Custom validation messages of the request schemas (config.ts is the operator's, in English). */
  issueMessages: Map<string, string>;
}

export function translatableStrings(): TranslatableStrings {
  const errorMessages = new Map<string, string>();
  const dynamicErrorMessages: string[] = [];
  const issueMessages = new Map<string, string>();
  for (const file of sourceFiles(srcDir)) {
    const relative = path.relative(srcDir, file);
    const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
    const visit = (node: ts.Node) => {
      if (ts.isNewExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'AppError') {
        const message = node.arguments?.[1];
        const text = literal(message);
        if (text !== undefined) errorMessages.set(text, relative);
        else if (message) {
          const { line } = source.getLineAndCharacterOfPosition(node.getStart());
          dynamicErrorMessages.push(`${relative}:${line + 1} ${message.getText()}`);
        }
      }
      if (
        relative !== 'config.ts' &&
        ts.isPropertyAssignment(node) &&
        ts.isIdentifier(node.name) &&
        (node.name.text === 'error' || node.name.text === 'message') &&
        literal(node.initializer) !== undefined &&
        ts.isObjectLiteralExpression(node.parent) &&
        ts.isCallExpression(node.parent.parent)
      ) {
        issueMessages.set(literal(node.initializer) as string, relative);
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return { errorMessages, dynamicErrorMessages, issueMessages };
}
