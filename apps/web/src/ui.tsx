/** Plain, accessible building blocks: labelled fields, error text tied to its input, a status line. */
import { type ComponentProps, type ReactNode, useEffect, useId, useRef } from 'react';
import type { Problem } from './errors.ts';

export function Field({
  label,
  error,
  hint,
  ...input
}: ComponentProps<'input'> & { label: string; error?: string | undefined; hint?: string }) {
  const id = useId();
  const described = [error && `${id}-error`, hint && `${id}-hint`].filter(Boolean).join(' ') || undefined;
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <input id={id} aria-invalid={error ? true : undefined} aria-describedby={described} {...input} />
      {hint && (
        <small id={`${id}-hint`} className="hint">
          {hint}
        </small>
      )}
      {error && (
        <small id={`${id}-error`} className="error">
          {error}
        </small>
      )}
    </div>
  );
}

/** The form's own error (not tied to a field), announced and focused when it appears. */
export function FormError({ problem }: { problem: Problem | null | undefined }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (problem) ref.current?.focus();
  }, [problem]);
  if (!problem) return null;
  return (
    <div ref={ref} role="alert" tabIndex={-1} className="alert" data-app-code={problem.appCode}>
      {problem.message}
    </div>
  );
}

export function Notice({ children }: { children: ReactNode }) {
  return (
    <div role="status" className="notice">
      {children}
    </div>
  );
}

/** Whether a page has been shown since the document loaded (see Page). */
let shownSinceLoad = false;

/**
 * A page: its title as the document title and the one h1. A page shown after another (a link
 * followed, a form that moves on, a session that ended, a page's title changing with what it
 * shows) takes the focus to its heading, so a screen reader says where it is and Tab starts
 * from it, unless the page has put it in itself (a field, an error). The document's first page
 * leaves the focus where the browser put it.
 */
export function Page({ title, children }: { title: string; children: ReactNode }) {
  const section = useRef<HTMLElement>(null);
  const heading = useRef<HTMLHeadingElement>(null);
  /** The title this page has shown (and decided the focus for): StrictMode runs effects twice. */
  const shown = useRef<string | undefined>(undefined);
  useEffect(() => {
    document.title = `${title} · App`;
    if (shown.current === title) return;
    const firstOfDocument = shown.current === undefined && !shownSinceLoad;
    shown.current = title;
    shownSinceLoad = true;
    if (!firstOfDocument && !section.current?.contains(document.activeElement)) heading.current?.focus();
  }, [title]);
  return (
    <section ref={section} aria-labelledby="page-title">
      <h1 ref={heading} id="page-title" tabIndex={-1}>
        {title}
      </h1>
      {children}
    </section>
  );
}
