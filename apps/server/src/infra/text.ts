/**
 * The first `count` characters of `value`, counted as Postgres and zod count them (code
 * points, not UTF-16 units): a cut never leaves half of an emoji, which UTF-8 cannot carry
 * and Postgres would store as U+FFFD.
 */
export function firstCharacters(value: string, count: number): string {
  return value.length <= count ? value : [...value].slice(0, count).join('');
}
