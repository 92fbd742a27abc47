/**
 * A person's own account in the browser: sign up and confirm the email, notes (create,
 * edit, page, search, optimistic delete, a refused edit), password change, signing out everywhere,
 * password reset by email, sign-in with an emailed code, and the profile picture.
 */
import { createClient, getAppErrorCode, memoryTokenStore } from '@app/sdk';
import { registerAccount, uniqueEmail } from '@app/server/testing';
import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import {
  describeInBrowser,
  type Harness,
  hasFocus,
  heading,
  holdCall,
  linkIn,
  mailTo,
  pathOf,
  signIn,
  solidPng,
  startHarness,
  status,
  storedTokens,
  submitPasswordSignIn,
  userRow,
} from './harness.ts';

describeInBrowser('a person and their account', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness();
  });
  afterEach(() => h?.endTest());
  afterAll(() => h?.close());

  const noteTitles = async (ownerId: string) =>
    (await h.t.services.db.selectFrom('notes').select('title').where('owner_id', '=', ownerId).execute())
      .map((note) => note.title)
      .sort();
  const listedTitles = (page: Page) =>
    page.getByRole('list', { name: 'Your notes' }).getByRole('heading').allTextContents();

  it('signs up, confirms the email, keeps notes, changes the password and signs out everywhere', async () => {
    const page = await h.newPage();
    const email = uniqueEmail('web');
    const password = 'First-pass-1234';
    const newPassword = 'Second-pass-5678';

    // Sign up: straight to the notes, asked to confirm the email.
    await page.goto('/sign-up');
    await heading(page, 'Create an account').waitFor();
    await page.getByLabel('Name (optional)').fill('Ada Lovelace');
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password', { exact: true }).fill(password);
    await page.getByRole('button', { name: 'Create account' }).click();
    await heading(page, 'Notes').waitFor();
    await status(page, 'Please confirm your email address').waitFor();
    const { id: userId, name } = await userRow(h.t, email);
    expect(name).toBe('Ada Lovelace');

    // The email's link opens the app's page, which confirms the address.
    const link = linkIn(await mailTo(h.t, email, 'verify-email'), `${h.url}/verify-email?token=`);
    await page.goto(link);
    await status(page, 'Your email address is confirmed.').waitFor();
    expect((await userRow(h.t, email)).email_verified_at).not.toBeNull();

    await page.getByRole('button', { name: 'Sign out' }).click();
    await heading(page, 'Sign in').waitFor();
    expect(await storedTokens(page)).toBeNull();
    await signIn(page, email, password);
    expect(await page.getByText('Please confirm your email address').count()).toBe(0);

    // Three notes through the form.
    const newNote = page.getByRole('group', { name: 'New note' });
    const list = page.getByRole('list', { name: 'Your notes' });
    for (const [title, body] of [
      ['Groceries', 'milk, eggs'],
      ['Travel plans', 'Lisbon in May'],
      ['Book list', 'Dune, Emma'],
    ] as const) {
      await newNote.getByLabel('Title').fill(title);
      await newNote.getByLabel('Text').fill(body);
      await newNote.getByRole('button', { name: 'Add note' }).click();
      await list.getByRole('heading', { name: title, exact: true }).waitFor();
    }
    await expect.poll(() => noteTitles(userId)).toEqual(['Book list', 'Groceries', 'Travel plans']);

    // Edit one.
    await page.getByRole('button', { name: 'Edit “Travel plans”' }).click();
    const editor = page.getByRole('group', { name: 'Edit “Travel plans”' });
    await editor.getByLabel('Title').fill('Travel plans for May');
    await editor.getByRole('button', { name: 'Save' }).click();
    await list.getByRole('heading', { name: 'Travel plans for May', exact: true }).waitFor();
    await expect.poll(() => noteTitles(userId)).toEqual(['Book list', 'Groceries', 'Travel plans for May']);

    // Twelve notes: a page of ten, then "Show more".
    const tokens = await storedTokens(page);
    const asThisUser = createClient({ url: h.url, getAccessToken: () => tokens?.accessToken });
    for (let i = 1; i <= 9; i++) await asThisUser.notes.create.mutate({ title: `Filler ${i}`, body: '' });
    await page.reload();
    await list.getByRole('heading', { name: 'Filler 9', exact: true }).waitFor();
    await expect.poll(() => list.getByRole('listitem').count()).toBe(10);
    await page.getByRole('button', { name: 'Show more' }).click();
    await expect.poll(() => list.getByRole('listitem').count()).toBe(12);
    expect((await listedTitles(page)).sort()).toEqual(await noteTitles(userId));
    expect(await page.getByRole('button', { name: 'Show more' }).count()).toBe(0);

    // Search finds only the matching note.
    const search = page.getByLabel('Search notes');
    await search.fill('book');
    await expect.poll(() => listedTitles(page)).toEqual(['Book list']);
    await search.fill('nothing like this');
    await page.getByText('No note matches.').waitFor();
    await search.fill('');
    await expect.poll(() => list.getByRole('listitem').count()).toBe(12);

    // Delete: the note leaves the list while the server has not even received the call.
    const deletion = await holdCall(page, 'notes.delete');
    await page.getByRole('button', { name: 'Delete “Groceries”' }).click();
    await deletion.arrived;
    await list.getByRole('heading', { name: 'Groceries', exact: true }).waitFor({ state: 'detached' });
    expect(await noteTitles(userId)).toContain('Groceries');
    deletion.release();
    await expect.poll(() => noteTitles(userId)).not.toContain('Groceries');
    await deletion.stop();
    await expect.poll(() => list.getByRole('listitem').count()).toBe(11);
    expect(await listedTitles(page)).not.toContain('Groceries');

    // What is typed while the last note is still being saved stays in the form.
    const creation = await holdCall(page, 'notes.create');
    await newNote.getByLabel('Title').fill('Saved slowly');
    await newNote.getByRole('button', { name: 'Add note' }).click();
    await list.getByRole('heading', { name: 'Saved slowly', exact: true }).waitFor();
    await newNote.getByLabel('Title').fill('Typed meanwhile');
    // Once saved, the list is read again (after the form has heard of the success).
    const listedAgain = page.waitForResponse((response) => response.url().includes('notes.list'));
    creation.release();
    await creation.answered;
    await listedAgain;
    expect(await noteTitles(userId)).toContain('Saved slowly');
    expect(await newNote.getByLabel('Title').inputValue()).toBe('Typed meanwhile');
    await creation.stop();

    // Change the password; a fresh sign-in takes the new one.
    await page.getByRole('link', { name: 'Profile' }).click();
    await heading(page, 'Profile').waitFor();
    const passwordForm = page.getByRole('form', { name: 'Change password' });
    await passwordForm.getByLabel('Current password', { exact: true }).fill(password);
    await passwordForm.getByLabel('New password', { exact: true }).fill(newPassword);
    await passwordForm.getByRole('button', { name: 'Change password' }).click();
    await status(passwordForm, 'Password changed.').waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await heading(page, 'Sign in').waitFor();
    await signIn(page, email, newPassword);

    // Sessions: this device and another; "Sign out everywhere" ends both.
    const elsewhere = createClient({ url: h.url, auth: { tokenStore: memoryTokenStore() } });
    await elsewhere.auth.login.mutate({ email, password: newPassword });
    await page.getByRole('link', { name: 'Sessions' }).click();
    await heading(page, 'Sessions').waitFor();
    const table = page.getByRole('table', { name: 'Your active sessions' });
    await table.getByRole('row').filter({ hasText: '(this device)' }).waitFor();
    expect(await table.getByRole('row').count()).toBe(3); // the header, this browser, `elsewhere`
    await page.getByRole('button', { name: 'Sign out everywhere' }).click();
    await heading(page, 'Sign in').waitFor();
    expect(pathOf(page)).toBe('/sign-in');
    expect(await storedTokens(page)).toBeNull();
    expect(await elsewhere.users.me.query().catch(getAppErrorCode)).toBe('SESSION_REVOKED');
  });

  /** A signed-in page of a new account that has these notes (the last one created on top). */
  async function notesOf(titles: string[]) {
    const account = await registerAccount(h.t.app);
    const asAccount = createClient({ url: h.url, getAccessToken: () => account.accessToken });
    const notes = [];
    for (const title of titles) notes.push(await asAccount.notes.create.mutate({ title, body: '' }));
    const page = await h.newPage();
    await signIn(page, account.email, account.password);
    await page.getByRole('list', { name: 'Your notes' }).getByRole('heading').first().waitFor();
    return { account, asAccount, notes, page };
  }

  it('keeps what was typed in a note’s editor when the server refuses the save, and says why there', async () => {
    const { account, page } = await notesOf(['Kept']);
    await page.getByRole('button', { name: 'Edit “Kept”' }).click();
    const editor = page.getByRole('group', { name: 'Edit “Kept”' });
    // A text over the 20,000 characters a note may hold.
    const tooLong = 'All of this was typed. '.repeat(900);
    await editor.getByLabel('Title').fill('Kept, renamed');
    await editor.getByLabel('Text').fill(tooLong);
    await editor.getByRole('button', { name: 'Save' }).click();
    const refusal = editor.getByRole('alert');
    await refusal.waitFor();
    expect(await refusal.getAttribute('data-app-code')).toBe('VALIDATION_FAILED');
    expect(await editor.getByLabel('Title').inputValue()).toBe('Kept, renamed');
    expect(await editor.getByLabel('Text').inputValue()).toBe(tooLong);
    expect(await noteTitles(account.id)).toEqual(['Kept']);

    // Shortened, it is saved and the editor closes.
    await editor.getByLabel('Text').fill('Shorter now');
    await editor.getByRole('button', { name: 'Save' }).click();
    await editor.waitFor({ state: 'detached' });
    await page.getByRole('list', { name: 'Your notes' }).getByRole('heading', { name: 'Kept, renamed' }).waitFor();
    await expect.poll(() => noteTitles(account.id)).toEqual(['Kept, renamed']);
  });

  it('sends only what an edit changed: a title renamed elsewhere meanwhile stays', async () => {
    const { account, asAccount, notes, page } = await notesOf(['Draft']);
    await page.getByRole('button', { name: 'Edit “Draft”' }).click();
    const editor = page.getByRole('group', { name: 'Edit “Draft”' });
    await editor.getByLabel('Text').fill('Typed here');
    await asAccount.notes.update.mutate({ id: notes[0]?.id ?? '', title: 'Renamed elsewhere' });
    await editor.getByRole('button', { name: 'Save' }).click();
    await editor.waitFor({ state: 'detached' });
    // Before: the editor sent the title it opened with too, and undid the rename.
    const stored = () =>
      h.t.services.db.selectFrom('notes').select(['title', 'body']).where('owner_id', '=', account.id).execute();
    await expect.poll(stored).toEqual([{ title: 'Renamed elsewhere', body: 'Typed here' }]);
  });

  it('keeps what was typed in a note’s editor when the note was deleted elsewhere meanwhile', async () => {
    const { asAccount, notes, page } = await notesOf(['Stays', 'Gone']);
    await page.getByRole('button', { name: 'Edit “Gone”' }).click();
    const editor = page.getByRole('group', { name: 'Edit “Gone”' });
    await editor.getByLabel('Text').fill('Typed before hearing it was deleted');
    await asAccount.notes.delete.mutate({ id: notes[1]?.id ?? '' });

    // Refused (404), and the list read again without the note: the editor stays, with the text.
    const listedAgain = page.waitForResponse((response) => response.url().includes('notes.list'));
    await editor.getByRole('button', { name: 'Save' }).click();
    const refusal = editor.getByRole('alert');
    await refusal.waitFor();
    expect(await refusal.getAttribute('data-app-code')).toBe('NOT_FOUND');
    await listedAgain;
    await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));
    expect(await editor.getByLabel('Text').inputValue()).toBe('Typed before hearing it was deleted');

    await editor.getByRole('button', { name: 'Cancel' }).click();
    await editor.waitFor({ state: 'detached' });
    expect(await listedTitles(page)).toEqual(['Stays']);
  });

  it('keeps the list and an open editor, with what was typed, when the list cannot be read again; reads it on request', async () => {
    const { account, page } = await notesOf(['Open']);
    await page.getByRole('button', { name: 'Edit “Open”' }).click();
    const editor = page.getByRole('group', { name: 'Edit “Open”' });
    await editor.getByLabel('Text').fill('Typed while the server was away');
    // The server out of reach: the save fails, and so does the list's reading after it.
    await page.route('**/trpc/notes.**', (route) => route.abort('internetdisconnected'));
    const readAgain = page.waitForRequest((request) => request.url().includes('notes.list'));
    await editor.getByRole('button', { name: 'Save' }).click();
    await editor.getByRole('alert').waitFor();
    await readAgain;
    const stale = page.getByRole('status').filter({ hasText: 'The list could not be brought up to date' });
    await stale.waitFor();
    // Before: the list, and the editor with it, gave way to one alert.
    expect(await editor.getByLabel('Text').inputValue()).toBe('Typed while the server was away');
    expect(await page.getByRole('list', { name: 'Your notes' }).getByRole('group').count()).toBe(1);

    await page.unroute('**/trpc/notes.**');
    await stale.getByRole('button', { name: 'Try again' }).click();
    await stale.waitFor({ state: 'detached' });
    await editor.getByRole('button', { name: 'Save' }).click();
    await editor.waitFor({ state: 'detached' });
    const stored = () =>
      h.t.services.db.selectFrom('notes').select('body').where('owner_id', '=', account.id).execute();
    await expect.poll(stored).toEqual([{ body: 'Typed while the server was away' }]);
  });

  it('moves the focus with the work: into an editor, back to its Edit button, on past a deleted note', async () => {
    const { page } = await notesOf(['Third', 'Second', 'First']);
    const [first, second, third] = await listedTitles(page);
    const edit = (title: string | undefined) => page.getByRole('button', { name: `Edit “${title}”` });
    const deleteButton = (title: string | undefined) => page.getByRole('button', { name: `Delete “${title}”` });

    // Opened: the editor's title has the focus; cancelled: back to the note's Edit button.
    await edit(first).click();
    const editor = page.getByRole('group', { name: `Edit “${first}”` });
    await expect.poll(() => hasFocus(editor.getByLabel('Title'))).toBe(true);
    await editor.getByRole('button', { name: 'Cancel' }).click();
    await editor.waitFor({ state: 'detached' });
    await expect.poll(() => hasFocus(edit(first))).toBe(true);

    // Edited from the keyboard alone and saved with Enter: back to Edit, under the new title.
    await page.keyboard.press('Enter');
    await expect.poll(() => hasFocus(editor.getByLabel('Title'))).toBe(true);
    await page.keyboard.press('End');
    await page.keyboard.type(', renamed');
    await page.keyboard.press('Enter');
    await editor.waitFor({ state: 'detached' });
    await expect.poll(() => hasFocus(edit(`${first}, renamed`))).toBe(true);

    // Deleted: on to the next note; the last one: back to the one before; none left: a new note.
    await deleteButton(`${first}, renamed`).click();
    await expect.poll(() => hasFocus(edit(second))).toBe(true);
    await deleteButton(third).click();
    await expect.poll(() => hasFocus(edit(second))).toBe(true);
    await deleteButton(second).click();
    await page.getByText('No notes yet.').waitFor();
    const form = page.getByRole('group', { name: 'New note' });
    await expect.poll(() => hasFocus(form.getByLabel('Title'))).toBe(true);
  });

  it('leaves the focus where it was taken when an editor closes after it (a search typed during the save)', async () => {
    const { page } = await notesOf(['Slow save']);
    await page.getByRole('button', { name: 'Edit “Slow save”' }).click();
    const editor = page.getByRole('group', { name: 'Edit “Slow save”' });
    await editor.getByLabel('Text').fill('Saved while searching');
    const save = await holdCall(page, 'notes.update');
    await editor.getByRole('button', { name: 'Save' }).click();
    await save.arrived;
    const search = page.getByLabel('Search notes');
    await search.focus();
    save.release();
    await save.answered;
    await save.stop();
    await editor.waitFor({ state: 'detached' });
    expect(await hasFocus(search)).toBe(true);
  });

  it('takes the focus to a new page’s heading after a navigation, and leaves the first page’s to the browser', async () => {
    const account = await registerAccount(h.t.app);
    const page = await h.newPage();
    await page.goto('/sign-in');
    await heading(page, 'Sign in').waitFor();
    // (The title is set by the effect that decides the focus: it has run.)
    await expect.poll(() => page.title()).toBe('Sign in · App');
    expect(await hasFocus(heading(page, 'Sign in'))).toBe(false);

    // A form that moves on, then a link: each new page's heading has the focus (a screen reader
    // reads it), and Tab goes on into that page, not back to the top of the document.
    await submitPasswordSignIn(page, account.email, account.password);
    await heading(page, 'Notes').waitFor();
    await expect.poll(() => hasFocus(heading(page, 'Notes'))).toBe(true);
    await page.getByRole('link', { name: 'Profile' }).click();
    await heading(page, 'Profile').waitFor();
    await expect.poll(() => hasFocus(heading(page, 'Profile'))).toBe(true);
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.querySelector('main')?.contains(document.activeElement))).toBe(true);
  });

  it('adds a note once however fast its button is pressed again', async () => {
    const { account, page } = await notesOf(['First']);
    const form = page.getByRole('group', { name: 'New note' });
    await form.getByLabel('Title').fill('Only once');
    // The save held until every press is in, as on a slow network; every one sent is counted.
    let sent = 0;
    page.on('request', (request) => {
      if (request.url().includes('notes.create')) sent += 1;
    });
    const save = await holdCall(page, 'notes.create');
    await form.getByRole('button', { name: 'Add note' }).dblclick();
    await form.getByLabel('Title').press('Enter');
    await save.arrived;
    save.release();
    await save.answered;
    await save.stop();
    await page.getByRole('list', { name: 'Your notes' }).getByRole('heading', { name: 'Only once' }).waitFor();
    await expect.poll(() => noteTitles(account.id)).toEqual(['First', 'Only once']);
    expect(sent).toBe(1);
  });

  it('confirms the email from a link opened signed out once the account signs in, and comes back to it', async () => {
    const account = await registerAccount(h.t.app, { password: 'Elsewhere-pass-1' });
    const link = linkIn(await mailTo(h.t, account.email, 'verify-email'), `${h.url}/verify-email?token=`);
    // Another device: nobody is signed in there.
    const page = await h.newPage();
    await page.goto(link);
    await page.getByText('Sign in to the account this link was sent to').waitFor();
    expect((await userRow(h.t, account.email)).email_verified_at).toBeNull();

    await page.getByRole('link', { name: 'Sign in to confirm' }).click();
    await heading(page, 'Sign in').waitFor();
    await submitPasswordSignIn(page, account.email, 'Elsewhere-pass-1');
    await status(page, 'Your email address is confirmed.').waitFor();
    expect(pathOf(page)).toBe('/verify-email');
    expect((await userRow(h.t, account.email)).email_verified_at).not.toBeNull();
    // Opened again once confirmed: it says so (the link is spent, the address confirmed).
    await page.goto(link);
    await status(page, 'Your email address is confirmed.').waitFor();
    expect(await page.getByRole('alert').count()).toBe(0);
    // Another account's link, opened signed in as this one: refused, and said so.
    const other = await registerAccount(h.t.app);
    await page.goto(linkIn(await mailTo(h.t, other.email, 'verify-email'), `${h.url}/verify-email?token=`));
    const refusal = page.getByRole('alert');
    await refusal.waitFor();
    expect(await refusal.getAttribute('data-app-code')).toBe('INVALID_TOKEN');
    expect(await refusal.textContent()).toContain('This link was sent to another account');
    expect((await userRow(h.t, other.email)).email_verified_at).toBeNull();
  });

  it('comes back to the email’s link after signing in again when the browser’s session had ended', async () => {
    const account = await registerAccount(h.t.app, { password: 'Ended-pass-1' });
    const link = linkIn(await mailTo(h.t, account.email, 'verify-email'), `${h.url}/verify-email?token=`);
    const page = await h.newPage();
    await signIn(page, account.email, 'Ended-pass-1');
    // Signed out everywhere from another device: this browser still holds its tokens.
    await createClient({ url: h.url, getAccessToken: () => account.accessToken }).auth.logoutAll.mutate();
    await page.goto(link);
    await heading(page, 'Sign in').waitFor();
    await submitPasswordSignIn(page, account.email, 'Ended-pass-1');
    // Before: the notes, and the link to find and open again.
    await status(page, 'Your email address is confirmed.').waitFor();
    expect(pathOf(page)).toBe('/verify-email');
  });

  it('resets a forgotten password from the emailed link; the old password is refused', async () => {
    const account = await registerAccount(h.t.app, { password: 'Forgotten-pass-1' });
    const newPassword = 'Remembered-pass-2';
    const page = await h.newPage();

    await page.goto('/sign-in');
    await page.getByRole('link', { name: 'Forgot your password?' }).click();
    await heading(page, 'Forgot your password?').waitFor();
    await page.getByLabel('Email').fill(account.email);
    await page.getByRole('button', { name: 'Email me a link' }).click();
    await status(page, `If an account uses ${account.email}, we sent it a link`).waitFor();

    const link = linkIn(await mailTo(h.t, account.email, 'reset-password'), `${h.url}/reset-password?token=`);
    await page.goto(link);
    await heading(page, 'Choose a new password').waitFor();
    await page.getByLabel('New password', { exact: true }).fill(newPassword);
    await page.getByRole('button', { name: 'Set password' }).click();
    await heading(page, 'Password changed').waitFor();
    // The page's new heading has the focus (the form and its button are gone).
    await expect.poll(() => hasFocus(heading(page, 'Password changed'))).toBe(true);
    // The reset ended the sessions the account had.
    const before = createClient({ url: h.url, getAccessToken: () => account.accessToken });
    expect(await before.users.me.query().catch(getAppErrorCode)).toBe('SESSION_REVOKED');

    await page.getByRole('link', { name: 'Sign in with the new password' }).click();
    await heading(page, 'Sign in').waitFor();
    await submitPasswordSignIn(page, account.email, 'Forgotten-pass-1');
    const alert = page.getByRole('alert');
    await alert.waitFor();
    expect(await alert.getAttribute('data-app-code')).toBe('INVALID_CREDENTIALS');
    expect(await alert.textContent()).toBe('Email or password is incorrect');
    expect(pathOf(page)).toBe('/sign-in');

    await submitPasswordSignIn(page, account.email, newPassword);
    await heading(page, 'Notes').waitFor();
    expect(pathOf(page)).toBe('/notes');
  });

  it('signs a tab out when a reset made in it ended its own session, and keeps another account signed in', async () => {
    const account = await registerAccount(h.t.app, { password: 'Reset-here-1' });
    const other = await registerAccount(h.t.app, { password: 'Other-pass-1' });
    const resetLink = async () => {
      await createClient({ url: h.url }).auth.forgotPassword.mutate({ email: account.email });
      return linkIn(await mailTo(h.t, account.email, 'reset-password'), `${h.url}/reset-password?token=`);
    };
    // Set from the link opened in a signed-in tab; resolves once the tab has asked who it is again.
    const setPassword = async (page: Page, link: string, password: string) => {
      await page.goto(link);
      await page.getByRole('button', { name: 'Sign out' }).waitFor();
      await page.getByLabel('New password', { exact: true }).fill(password);
      const readAgain = page.waitForResponse((response) => response.url().includes('users.me'));
      await page.getByRole('button', { name: 'Set password' }).click();
      await heading(page, 'Password changed').waitFor();
      await readAgain;
    };

    // Signed in to the account whose password it resets: signed out, on the page that says so.
    const own = await h.newPage();
    await signIn(own, account.email, 'Reset-here-1');
    await setPassword(own, await resetLink(), 'Reset-here-2');
    // Before: "Sign out" stayed in the navigation until the tab's next call.
    await own.getByRole('navigation').getByRole('link', { name: 'Sign in' }).waitFor();
    expect(await storedTokens(own)).toBeNull();
    expect(pathOf(own)).toBe('/reset-password');

    // Signed in to another account: that one stays.
    const another = await h.newPage();
    await signIn(another, other.email, 'Other-pass-1');
    await setPassword(another, await resetLink(), 'Reset-here-3');
    expect(await another.getByRole('button', { name: 'Sign out' }).isVisible()).toBe(true);
    expect(await storedTokens(another)).not.toBeNull();
  });

  it('signs in with a code from the email', async () => {
    const account = await registerAccount(h.t.app);
    const page = await h.newPage();
    await page.goto('/sign-in');
    await page.getByRole('button', { name: 'Email code' }).click();
    const form = page.getByRole('form', { name: 'Sign in with an email code' });
    await form.getByLabel('Email').fill(account.email);
    await form.getByRole('button', { name: 'Email me a code' }).click();
    await status(form, `We sent a 6-digit code to ${account.email}`).waitFor();

    const email = await mailTo(h.t, account.email, 'one-time-code');
    const code = /\b(\d{6})\b/.exec(email.text)?.[1];
    expect(code, email.text).toBeDefined();
    await form.getByLabel('Code').fill(code ?? '');
    await form.getByRole('button', { name: 'Sign in', exact: true }).click();
    await heading(page, 'Notes').waitFor();
    expect(pathOf(page)).toBe('/notes');
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    const tokens = await storedTokens(page);
    const asBrowser = createClient({ url: h.url, getAccessToken: () => tokens?.accessToken });
    expect((await asBrowser.users.me.query()).email).toBe(account.email);
  });

  it('says the linked sign-in providers could not be read, instead of showing none, and reads them again on request', async () => {
    const account = await registerAccount(h.t.app);
    const page = await h.newPage();
    await signIn(page, account.email, account.password);
    await page.route('**/trpc/**auth.identities.list**', (route) => route.abort('internetdisconnected'));
    await page.getByRole('link', { name: 'Profile' }).click();
    const unread = page.getByRole('status').filter({ hasText: 'They could not be read' });
    await unread.waitFor();
    await page.unroute('**/trpc/**auth.identities.list**');
    await unread.getByRole('button', { name: 'Try again' }).click();
    // None linked: read, the section goes.
    await page.getByRole('heading', { name: 'Linked sign-in providers' }).waitFor({ state: 'detached' });
  });

  it('uploads a profile picture, shows it, and removes it', async () => {
    const account = await registerAccount(h.t.app);
    const page = await h.newPage();
    await signIn(page, account.email, account.password);
    await page.getByRole('link', { name: 'Profile' }).click();
    await heading(page, 'Profile').waitFor();
    await page.getByText('No picture yet.').waitFor();

    await page
      .getByLabel(/^Upload a picture/)
      .setInputFiles({ name: 'me.png', mimeType: 'image/png', buffer: solidPng(4, [0x1f, 0x6f, 0xeb]) });
    const picture = page.getByRole('img', { name: 'Your profile' });
    await picture.waitFor();
    // The browser loaded and decoded it: our 4×4 picture, from this server.
    await expect
      .poll(() => picture.evaluate((img: HTMLImageElement) => (img.complete ? img.naturalWidth : -1)))
      .toBe(4);
    const { avatar_file_id: fileId } = await userRow(h.t, account.email);
    expect(fileId).not.toBeNull();
    expect(await picture.getAttribute('src')).toBe(`${h.url}/api/files/${fileId}/content`);

    await page.getByRole('button', { name: 'Remove picture' }).click();
    await picture.waitFor({ state: 'detached' });
    await page.getByText('No picture yet.').waitFor();
    expect((await userRow(h.t, account.email)).avatar_file_id).toBeNull();
  });
});
