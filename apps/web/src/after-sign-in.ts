/** Where a sign-in lands: back on the page the person was sent from, never on another site. */

const HOME = '/notes';

/**
 * `requested` when it is a path of this app (with its query), else the notes. Anything that
 * would leave the origin is refused, whoever wrote it: `https://…`, `//evil`, `/\evil` (which
 * browsers read as `//evil`), a path with a tab or a newline inside the slashes.
 */
export function afterSignIn(requested: unknown): string {
  if (typeof requested !== 'string' || !requested.startsWith('/')) return HOME;
  try {
    const url = new URL(requested, window.location.origin);
    return url.origin === window.location.origin ? `${url.pathname}${url.search}${url.hash}` : HOME;
  } catch {
    return HOME;
  }
}
