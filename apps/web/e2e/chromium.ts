/** Debian's Chromium: the only browser these tests use (never a downloaded one). */
export const CHROMIUM = '/usr/bin/chromium';
