/** Where a sign-in lands: back on the page the person was sent from, never on another site. */

const HOME = '/notes';

/**
 * `requested` when it is a path of this app (with its query), else the notes. Anything that
 * would leave the origin is refused, whoever wrote it: `https://…`, `//evil`, `/\evil` (which
 * browsers read as `//evil`), a path with a tab or a newline inside the slashes, and one
 * whose dots normalise it into any of those.
 */
export function afterSignIn(requested: unknown): string {
  if (typeof requested !== 'string' || !requested.startsWith('/')) return HOME;
  try {
    const url = new URL(requested, window.location.origin);
    const path = `${url.pathname}${url.search}${url.hash}`;
    // A path that normalises to `//host…` (`/.//host`, `/%2e//host`) reads as another site.
    return url.origin === window.location.origin && !/^\/[/\\]/.test(path) ? path : HOME;
  } catch {
    return HOME;
  }
}
