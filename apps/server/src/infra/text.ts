/**
 * The first `count` characters of `value`, counted as Postgres and zod count them (code
 * points, not UTF-16 units): a cut never leaves half of an emoji, which UTF-8 cannot carry
 * and Postgres would store as U+FFFD.
 */
export function firstCharacters(value: string, count: number): string {
  return value.length <= count ? value : [...value].slice(0, count).join('');
}

/**
 * Characters a line people read may not hold: control characters and line or paragraph
 * separators (a line break, a terminal escape), and the invisible ones that reorder or hide
 * what a list shows (bidi embeddings, overrides and isolates; zero-width spaces, word joiners
 * and the other invisible operators, the deprecated format characters, the BOM, Hangul
 * fillers). The joiners emoji and some scripts need stay, as do the direction marks.
 */
const NOT_IN_A_LINE =
  /[\p{Cc}\p{Zl}\p{Zp}\u200B\u202A-\u202E\u2060-\u2064\u2066-\u206F\uFEFF\u115F\u1160\u3164\uFFA0]/gu;
/** A character that shows: not formatting, a mark or a space (nor what NOT_IN_A_LINE refuses). */
const VISIBLE = /[^\p{Cf}\p{M}\p{Z}\p{Cc}\u115F\u1160\u3164\uFFA0]/u;

/** Why `value` is not one line people read (`lineOfText`, an input's rule), or undefined when it is. */
export function lineProblem(value: string): 'control' | 'invisible' | 'blank' | undefined {
  for (const [character] of value.matchAll(NOT_IN_A_LINE)) {
    if (character !== '\u0000') return /[\p{Cc}\p{Zl}\p{Zp}]/u.test(character) ? 'control' : 'invisible';
  }
  if (value !== '' && !VISIBLE.test(value)) return 'blank';
  return undefined;
}

/** `value` without what a line people read may not hold (a name a provider sent), trimmed; empty when nothing visible is left. */
export function asLineOfText(value: string): string {
  const line = value.replace(NOT_IN_A_LINE, '').trim();
  return VISIBLE.test(line) ? line : '';
}
