/**
 * The example module's page: keyset paging ("Show more"), search, and create, edit and delete
 * with optimistic updates (the list changes at once and rolls back if the server refuses).
 * An edit that is refused keeps its editor open, with what was typed and why. The focus follows
 * the work: into an editor as it opens, back to its note's Edit button as it closes, and to
 * the next note (or the new-note form) when a note is deleted.
 */
import type { Note, RouterOutputs } from '@app/sdk';
import {
  type InfiniteData,
  keepPreviousData,
  useInfiniteQuery,
  useMutation,
  useQueryClient,
} from '@tanstack/react-query';
import { type Ref, useDeferredValue, useEffect, useId, useRef, useState } from 'react';
import { api } from '../api.ts';
import { type Problem, problemOf } from '../errors.ts';
import { useSession } from '../session.tsx';
import { Field, FormError, Notice, Page } from '../ui.tsx';

type NotesPage = RouterOutputs['notes']['list'];
type NotesCache = InfiniteData<NotesPage, string | undefined>;
/** What an edit changes: the fields left as they were are not sent. */
type NoteChanges = { title?: string; body?: string };
const PAGE_SIZE = 10;

export function Notes() {
  const { user } = useSession();
  const [search, setSearch] = useState('');
  const deferred = useDeferredValue(search.trim());
  const queryClient = useQueryClient();
  const listKey = ['notes.list', deferred] as const;
  const notes = useInfiniteQuery({
    queryKey: listKey,
    queryFn: ({ pageParam }) =>
      api.notes.list.query({
        limit: PAGE_SIZE,
        ...(pageParam && { cursor: pageParam }),
        ...(deferred && { search: deferred }),
      }),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => last.nextCursor ?? undefined,
    // A new search keeps the list (and any open editor in it) until its results come.
    placeholderData: keepPreviousData,
  });

  /** Applies `change` to every cached page of every search, returning what to restore on failure. */
  const optimistically = async (change: (items: Note[], pageIndex: number) => Note[]) => {
    await queryClient.cancelQueries({ queryKey: ['notes.list'] });
    const previous = queryClient.getQueriesData<NotesCache>({ queryKey: ['notes.list'] });
    queryClient.setQueriesData<NotesCache>(
      { queryKey: ['notes.list'] },
      (data) =>
        data && {
          ...data,
          pages: data.pages.map((page, i) => ({ ...page, items: change(page.items, i) })),
        },
    );
    return previous;
  };
  const rollback = (previous: [readonly unknown[], NotesCache | undefined][] | undefined) => {
    for (const [key, data] of previous ?? []) queryClient.setQueryData(key, data);
  };
  const settle = () => queryClient.invalidateQueries({ queryKey: ['notes.list'] });

  // The new-note form empties once the note is saved, unless something new was typed in the
  // meantime (the list showed the note at once); a refusal keeps what was typed.
  const [saved, setSaved] = useState<{ title: string; body: string } | null>(null);
  const create = useMutation({
    mutationFn: (input: { title: string; body: string }) => api.notes.create.mutate(input),
    onSuccess: (_note, input) => setSaved(input),
    onMutate: (input) =>
      // A new note goes on top of the first page; edits and deletes reach every page.
      optimistically((items, pageIndex) =>
        pageIndex > 0
          ? items
          : [
              {
                id: `pending-${Date.now()}`,
                ownerId: user?.id ?? '',
                createdAt: new Date().toISOString(),
                updatedAt: new Date().toISOString(),
                ...input,
              },
              ...items,
            ],
      ),
    onError: (_error, _input, previous) => rollback(previous),
    onSettled: settle,
  });
  // One note per press of what was typed: the same note pressed again while it is sent (a
  // double click, Enter again) is not added twice; another one typed meanwhile may be.
  const sending = useRef(new Set<string>());
  const add = (input: { title: string; body: string }) => {
    const key = JSON.stringify([input.title, input.body]);
    if (sending.current.has(key)) return;
    sending.current.add(key);
    create
      .mutateAsync(input)
      .catch(() => undefined) // said by the form (create.error)
      .finally(() => sending.current.delete(key));
  };
  const update = useMutation({
    mutationFn: (input: { id: string } & NoteChanges) => api.notes.update.mutate(input),
    onMutate: (input) =>
      optimistically((items) => items.map((note) => (note.id === input.id ? { ...note, ...input } : note))),
    onError: (_error, _input, previous) => rollback(previous),
    onSettled: settle,
  });
  const remove = useMutation({
    mutationFn: (id: string) => api.notes.delete.mutate({ id }),
    onMutate: (id) => optimistically((items) => items.filter((note) => note.id !== id)),
    onError: (_error, _id, previous) => rollback(previous),
    onSettled: settle,
  });

  // Open editors, by note id: the note as it was when its editor opened, and where it was in
  // the list. An editor closes when its note is saved or it is cancelled, not before: if the
  // note leaves the list meanwhile (deleted elsewhere), its editor stays, with what was typed.
  const [editors, setEditors] = useState<ReadonlyMap<string, { note: Note; index: number }>>(new Map());
  const openEditor = (note: Note, index: number) => setEditors((open) => new Map(open).set(note.id, { note, index }));
  const closeEditor = (id: string) =>
    setEditors((open) => {
      const next = new Map(open);
      next.delete(id);
      return next;
    });

  const listed = notes.data?.pages.flatMap((page) => page.items) ?? [];
  const items = [...listed];
  for (const [id, { note, index }] of editors) {
    if (!listed.some((item) => item.id === id)) items.splice(Math.min(index, items.length), 0, note);
  }

  // A note leaving the list takes its buttons with it (deleted here, or its editor closed once
  // it was deleted elsewhere): the focus moves on to the note after it (before it, for the
  // last one), or to the new note's title once none is left.
  const list = useRef<HTMLUListElement>(null);
  const newTitle = useRef<HTMLInputElement>(null);
  const focusPast = (index: number) => {
    const notes = [...(list.current?.children ?? [])];
    const nearest = [...notes.slice(index + 1), ...notes.slice(0, index).reverse()];
    const control = nearest.map((note) => note.querySelector<HTMLElement>('button:enabled, input')).find(Boolean);
    (control ?? newTitle.current)?.focus();
  };
  return (
    <Page title="Notes">
      {user && !user.emailVerified && <Notice>Please confirm your email address: we sent you a link.</Notice>}
      <NoteForm
        saved={saved}
        legend="New note"
        submitLabel="Add note"
        onSubmit={add}
        titleRef={newTitle}
        problem={create.error ? problemOf(create.error) : null}
      />
      {remove.error && <FormError problem={problemOf(remove.error)} />}
      <search>
        <Field label="Search notes" type="search" value={search} onChange={(e) => setSearch(e.target.value)} />
      </search>
      {notes.isError && !notes.data ? (
        <>
          <FormError problem={problemOf(notes.error)} />
          <button type="button" onClick={() => void notes.refetch()}>
            Try again
          </button>
        </>
      ) : notes.isError ? (
        // A reading again that failed (a save's, a return to the tab): the list, and any editor
        // open in it with what was typed, stay; said without taking the focus from the editor.
        <Notice>
          The list could not be brought up to date: {problemOf(notes.error).message}{' '}
          <button type="button" onClick={() => void notes.refetch()}>
            Try again
          </button>
        </Notice>
      ) : null}
      {notes.isPending ? (
        <p aria-busy="true">Loading…</p>
      ) : !notes.data ? null : items.length === 0 ? (
        <p>{deferred ? 'No note matches.' : 'No notes yet.'}</p>
      ) : (
        <ul ref={list} className="notes" aria-label="Your notes" aria-busy={notes.isPlaceholderData || undefined}>
          {items.map((note, index) => (
            <NoteItem
              key={note.id}
              note={note}
              editing={editors.get(note.id)?.note}
              onEdit={() => openEditor(note, index)}
              onClose={() => {
                if (!listed.some((item) => item.id === note.id)) focusPast(index);
                closeEditor(note.id);
              }}
              onSave={(input) => update.mutateAsync({ id: note.id, ...input })}
              onDelete={() => {
                focusPast(index);
                remove.mutate(note.id);
              }}
            />
          ))}
        </ul>
      )}
      {notes.hasNextPage && (
        <button type="button" onClick={() => notes.fetchNextPage()} disabled={notes.isFetchingNextPage}>
          {notes.isFetchingNextPage ? 'Loading…' : 'Show more'}
        </button>
      )}
    </Page>
  );
}

function NoteItem({
  note,
  editing,
  onEdit,
  onClose,
  onSave,
  onDelete,
}: {
  note: Note;
  /** The note as it was when its editor opened; undefined while it is not edited. */
  editing: Note | undefined;
  onEdit: () => void;
  onClose: () => void;
  onSave: (changes: NoteChanges) => Promise<unknown>;
  onDelete: () => void;
}) {
  const pending = note.id.startsWith('pending-');
  // An editor that closes (saved, cancelled) with the focus in it gives the focus back to Edit;
  // not if it was taken elsewhere meanwhile (typing a search while the save was sent).
  const editButton = useRef<HTMLButtonElement>(null);
  const wasEditing = useRef(Boolean(editing));
  useEffect(() => {
    const closed = wasEditing.current && !editing;
    wasEditing.current = Boolean(editing);
    if (closed && (document.activeElement === document.body || !document.activeElement)) editButton.current?.focus();
  }, [editing]);
  if (editing) {
    return (
      <li>
        <NoteEditor note={editing} onSave={onSave} onClose={onClose} />
      </li>
    );
  }
  return (
    <li aria-busy={pending || undefined}>
      <h2>{note.title}</h2>
      {note.body && <p>{note.body}</p>}
      <div className="actions">
        <button ref={editButton} type="button" disabled={pending} onClick={onEdit} aria-label={`Edit “${note.title}”`}>
          Edit
        </button>
        <button type="button" disabled={pending} onClick={onDelete} aria-label={`Delete “${note.title}”`}>
          Delete
        </button>
      </div>
    </li>
  );
}

/** A note's editor: it closes once the note is saved; a refusal keeps what was typed and says why. */
function NoteEditor({
  note,
  onSave,
  onClose,
}: {
  note: Note;
  onSave: (changes: NoteChanges) => Promise<unknown>;
  onClose: () => void;
}) {
  const [saving, setSaving] = useState(false);
  const [problem, setProblem] = useState<Problem | null>(null);
  const title = useRef<HTMLInputElement>(null);
  useEffect(() => {
    title.current?.focus();
  }, []);
  const save = async (input: { title: string; body: string }) => {
    // Only what was changed here is sent: a field left alone keeps what another device saved
    // meanwhile (and a title saved under older rules stays as it is).
    const changes: NoteChanges = {
      ...(input.title !== note.title && { title: input.title }),
      ...(input.body !== note.body && { body: input.body }),
    };
    if (Object.keys(changes).length === 0) return onClose();
    setSaving(true);
    setProblem(null);
    try {
      await onSave(changes);
      onClose();
    } catch (error) {
      setProblem(problemOf(error));
      setSaving(false);
    }
  };
  return (
    <NoteForm
      legend={`Edit “${note.title}”`}
      submitLabel={saving ? 'Saving…' : 'Save'}
      busy={saving}
      initial={note}
      titleRef={title}
      problem={problem}
      onSubmit={save}
      onCancel={onClose}
    />
  );
}

function NoteForm(props: {
  legend: string;
  submitLabel: string;
  initial?: { title: string; body: string };
  problem?: Problem | null;
  /** Being saved: the buttons wait. */
  busy?: boolean;
  /** What was just saved: the form empties if it still holds exactly that. */
  saved?: { title: string; body: string } | null;
  titleRef?: Ref<HTMLInputElement>;
  onSubmit: (input: { title: string; body: string }) => void;
  onCancel?: () => void;
}) {
  const bodyId = useId();
  const [values, setValues] = useState({ title: props.initial?.title ?? '', body: props.initial?.body ?? '' });
  const { title, body } = values;
  const setTitle = (next: string) => setValues((current) => ({ ...current, title: next }));
  const setBody = (next: string) => setValues((current) => ({ ...current, body: next }));
  const { saved } = props;
  const bodyError = props.problem?.fields.body;
  useEffect(() => {
    if (!saved) return;
    setValues((current) =>
      current.title === saved.title && current.body === saved.body ? { title: '', body: '' } : current,
    );
  }, [saved]);
  return (
    <form
      noValidate
      onSubmit={(event) => {
        event.preventDefault();
        props.onSubmit({ title, body });
      }}
    >
      <fieldset>
        <legend>{props.legend}</legend>
        <FormError problem={props.problem} />
        <Field
          ref={props.titleRef}
          label="Title"
          required
          maxLength={200}
          value={title}
          onChange={(e) => setTitle(e.target.value)}
          error={props.problem?.fields.title}
        />
        <div className="field">
          <label htmlFor={bodyId}>Text</label>
          <textarea
            id={bodyId}
            rows={3}
            value={body}
            onChange={(e) => setBody(e.target.value)}
            aria-invalid={bodyError ? true : undefined}
            aria-describedby={bodyError ? `${bodyId}-error` : undefined}
          />
          {bodyError && (
            <small id={`${bodyId}-error`} className="error">
              {bodyError}
            </small>
          )}
        </div>
        <button type="submit" disabled={props.busy}>
          {props.submitLabel}
        </button>
        {props.onCancel && (
          <button type="button" disabled={props.busy} onClick={props.onCancel}>
            Cancel
          </button>
        )}
      </fieldset>
    </form>
  );
}
