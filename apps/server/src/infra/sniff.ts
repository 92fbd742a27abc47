/**
 * What a file is, from its first bytes (magic numbers), never from what the client says.
 * Formats without a signature are recognised as text when the bytes are valid UTF-8 without
 * control characters; anything else unknown is `application/octet-stream`.
 */
import { createRequire } from 'node:module';

const requireHere = createRequire(import.meta.url);
/**
 * file-type (some 35 modules) is loaded when first asked for, not with the server: by the
 * first upload, or by config's synchronous check of FILES_ALLOWED_TYPES (hence `require`,
 * which loads an ES module since Node 22.12, and keeps it loaded).
 */
const loadFileType = () => requireHere('file-type') as typeof import('file-type');

/** How many leading bytes the sniffing needs (file-type reads at most this many for common formats). */
export const SNIFF_BYTES = 4_100;

const utf8 = new TextDecoder('utf-8', { fatal: true });
// Control characters other than tab, line feed, form feed and carriage return: not text.
// biome-ignore lint/suspicious/noControlCharactersInRegex: this is the point
const BINARY = /[\u0000-\u0008\u000B\u000E-\u001F\u007F]/;

/** Bytes of no known format, and text that turned binary. */
export const OCTET_STREAM = 'application/octet-stream';

/**
 * Text wins over a signature met in bytes that are text: many are a few letters (`BM`, `MZ`,
 * `AC`, `ID3`, `FORM`...), which a CSV or a note may start with; the binary formats they mark
 * carry control bytes or invalid UTF-8 early on. Formats that can be wholly text keep their type.
 */
export async function sniffContentType(head: Uint8Array, options: { complete: boolean }): Promise<string> {
  const detected = (await loadFileType().fileTypeFromBuffer(head))?.mime;
  if (detected !== undefined && mayBeWhollyText(detected)) return detected;
  if (looksLikeText(head, options.complete)) return 'text/plain';
  return detected ?? OCTET_STREAM;
}

/**
 * The formats file-type recognises that can be written in plain text (an ASCII PDF or EPS, an
 * XML document, an armoured PGP message, an ASCII STL model...), besides `text/*` and XML.
 */
const TEXT_FORMATS = new Set([
  'application/eps',
  'application/pdf',
  'application/pgp-encrypted',
  'application/postscript',
  'application/rtf',
  'application/x-ms-regedit',
  'model/stl',
]);
const mayBeWhollyText = (mime: string) =>
  mime.startsWith('text/') || mime === 'application/xml' || mime.endsWith('+xml') || TEXT_FORMATS.has(mime);

function looksLikeText(head: Uint8Array, complete: boolean): boolean {
  // A multi-byte character may be cut at the end of a prefix: drop up to 3 trailing bytes.
  for (let cut = 0; cut <= (complete ? 0 : 3) && cut <= head.length; cut++) {
    try {
      return !BINARY.test(utf8.decode(head.subarray(0, head.length - cut)));
    } catch {}
  }
  return false;
}

/** Whether sniffing can ever answer this type (an allowed type it cannot answer would never match). */
export function isSniffable(contentType: string): boolean {
  return (
    contentType === 'text/plain' || contentType === OCTET_STREAM || loadFileType().supportedMimeTypes.has(contentType)
  );
}

/**
 * Checks that a whole stream is text, chunk by chunk (the first bytes said so, but a text
 * prefix can hide a binary): valid UTF-8 without control characters.
 */
export class TextCheck {
  private readonly decoder = new TextDecoder('utf-8', { fatal: true });

  /** False as soon as the bytes are not text. */
  push(chunk: Uint8Array): boolean {
    try {
      return !BINARY.test(this.decoder.decode(chunk, { stream: true }));
    } catch {
      return false;
    }
  }

  end(): boolean {
    try {
      return !BINARY.test(this.decoder.decode());
    } catch {
      return false;
    }
  }
}
