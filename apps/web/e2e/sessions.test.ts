/**
 * Sessions that end elsewhere: revoked from another device, or the account disabled by an
 * administrator. The browser notices at its next call and goes to the sign-in page with a
 * message. Another tab of the browser (the same tokens) signing into another account or out
 * is followed at once.
 */
import { createClient, memoryTokenStore } from '@app/sdk';
import { registerAccount } from '@app/server/testing';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import {
  adminSearchingFor,
  describeInBrowser,
  type Harness,
  hasFocus,
  heading,
  holdCall,
  pathOf,
  signIn,
  startHarness,
  status,
  storedTokens,
  submitPasswordSignIn,
  userRow,
} from './harness.ts';

const ENDED = 'Your session has ended (signed out elsewhere, or revoked). Please sign in again.';

describeInBrowser('sessions ended elsewhere', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness();
  });
  afterEach(() => h?.endTest());
  afterAll(() => h?.close());

  it('notices a session revoked from another device at its next call', async () => {
    const account = await registerAccount(h.t.app);
    const page = await h.newPage();
    await signIn(page, account.email, account.password);

    // Another device signs in and revokes the browser's session.
    const elsewhere = createClient({ url: h.url, auth: { tokenStore: memoryTokenStore() } });
    await elsewhere.auth.login.mutate({ email: account.email, password: account.password });
    const sessions = await elsewhere.auth.sessions.query();
    const browserSessions = sessions.filter((session) => !session.current && session.userAgent?.includes('Chrome'));
    expect(browserSessions).toHaveLength(1);
    await elsewhere.auth.revokeSession.mutate({ id: browserSessions[0]?.id ?? '' });

    // The browser still shows the notes; its next call (the sessions page) is refused.
    await heading(page, 'Notes').waitFor();
    await page.getByRole('link', { name: 'Sessions' }).click();
    await heading(page, 'Sign in').waitFor();
    await status(page, ENDED).waitFor();
    expect(pathOf(page)).toBe('/sign-in');
    expect(await storedTokens(page)).toBeNull();
    await page.getByRole('link', { name: 'Sign up' }).waitFor(); // the signed-out navigation
  });

  it("revokes a session from its row, named by its device, and moves the focus to the nearest row's button", async () => {
    const account = await registerAccount(h.t.app);
    const page = await h.newPage();
    await signIn(page, account.email, account.password);
    for (const device of ['Phone A', 'Phone B']) {
      const phone = createClient({
        url: h.url,
        headers: { 'user-agent': device },
        auth: { tokenStore: memoryTokenStore() },
      });
      await phone.auth.login.mutate({ email: account.email, password: account.password });
    }
    await page.getByRole('link', { name: 'Sessions' }).click();
    const table = page.getByRole('table', { name: 'Your active sessions' });
    await table.waitFor();
    const revokeButtons = table.getByRole('button', { name: /^Revoke / });
    // Each button names its session's device (before: "Revoke", every one).
    await table.getByRole('button', { name: /^Revoke Phone A, last used / }).focus();
    await table.getByRole('button', { name: /^Revoke Phone B, last used / }).waitFor();
    let left = await revokeButtons.count();
    const focusedIsRevoke = () =>
      page.evaluate(() => document.activeElement?.getAttribute('aria-label')?.startsWith('Revoke ') ?? false);
    while (left > 0) {
      await page.keyboard.press('Enter');
      await expect.poll(() => revokeButtons.count()).toBe(left - 1);
      left -= 1;
      // Before: the focus fell to the page's body with the row.
      if (left > 0) await expect.poll(focusedIsRevoke).toBe(true);
    }
    await expect.poll(() => hasFocus(page.getByRole('button', { name: 'Sign out everywhere' }))).toBe(true);
    expect(await table.locator('tbody tr').count()).toBe(1); // this device's
  });

  it('tells another tab of the same session why it ended (revoked), not that it signed out there', async () => {
    const account = await registerAccount(h.t.app);
    const tab = await h.newPage();
    await signIn(tab, account.email, account.password);
    const otherTab = await tab.context().newPage();
    await otherTab.goto('/notes');
    await heading(otherTab, 'Notes').waitFor();
    const elsewhere = createClient({ url: h.url, auth: { tokenStore: memoryTokenStore() } });
    await elsewhere.auth.login.mutate({ email: account.email, password: account.password });
    const browser = (await elsewhere.auth.sessions.query()).find(
      (session) => !session.current && session.userAgent?.includes('Chrome'),
    );
    await elsewhere.auth.revokeSession.mutate({ id: browser?.id ?? '' });
    // The first tab's next call meets the revocation; the other tab hears of it through the storage.
    await tab.getByRole('link', { name: 'Sessions' }).click();
    await status(tab, ENDED).waitFor();
    await heading(otherTab, 'Sign in').waitFor();
    // Before: "You signed out in another tab."
    await status(otherTab, ENDED).waitFor();
  });

  it('signs out a person an administrator disables, and refuses their sign-in', async () => {
    const member = await registerAccount(h.t.app);
    const memberPage = await h.newPage();
    await signIn(memberPage, member.email, member.password);
    const adminPage = await adminSearchingFor(h, member.email);
    const rows = adminPage.getByRole('table', { name: 'Users' }).getByRole('row');
    await expect
      .poll(() => rows.allTextContents())
      .toEqual([expect.any(String), expect.stringContaining(member.email)]);
    const row = rows.filter({ hasText: member.email });
    expect(await row.textContent()).toContain('Active');
    await adminPage.getByRole('button', { name: `Disable ${member.email}` }).click();
    await adminPage.getByRole('button', { name: `Enable ${member.email}` }).waitFor();
    expect(await row.textContent()).toContain('Disabled');
    // The row shows the change at once, and is busy until the server has made it.
    await expect.poll(() => row.getAttribute('aria-busy')).toBeNull();
    expect(await row.textContent()).toContain('Disabled');
    expect((await userRow(h.t, member.email)).disabled_at).not.toBeNull();

    // The member's next call (reloading the notes) ends the session with a message.
    await memberPage.reload();
    await heading(memberPage, 'Sign in').waitFor();
    await status(memberPage, ENDED).waitFor();
    expect(pathOf(memberPage)).toBe('/sign-in');
    expect(await storedTokens(memberPage)).toBeNull();

    // Signing in again is refused, with the reason.
    await submitPasswordSignIn(memberPage, member.email, member.password);
    const alert = memberPage.getByRole('alert');
    await alert.waitFor();
    expect(await alert.getAttribute('data-app-code')).toBe('ACCOUNT_DISABLED');
    expect(await alert.textContent()).toBe('This account is disabled');
    expect(pathOf(memberPage)).toBe('/sign-in');
  });

  it('stays signed in while the server cannot be reached, and carries on once it can', async () => {
    const account = await registerAccount(h.t.app);
    const page = await h.newPage();
    await signIn(page, account.email, account.password);
    const path = pathOf(page);
    const tokens = await storedTokens(page);

    await page.route('**/trpc/**', (route) => route.abort('internetdisconnected'));
    await page.reload();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(/could not be reached/);
    expect(pathOf(page)).toBe(path); // not the sign-in page
    expect(await storedTokens(page)).toEqual(tokens);

    await page.unroute('**/trpc/**');
    await page.getByRole('button', { name: 'Try again' }).click();
    await heading(page, 'Notes').waitFor();
  });

  it('keeps every session when "Sign out everywhere" cannot reach the server, and says so', async () => {
    const account = await registerAccount(h.t.app);
    const page = await h.newPage();
    await signIn(page, account.email, account.password);
    await page.getByRole('link', { name: 'Sessions' }).click();
    await heading(page, 'Sessions').waitFor();
    await page.getByRole('table', { name: 'Your active sessions' }).waitFor();
    const tokens = await storedTokens(page);

    await page.route('**/trpc/auth.logoutAll**', (route) => route.abort('internetdisconnected'));
    await page.getByRole('button', { name: 'Sign out everywhere' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(/could not be reached/);
    expect(pathOf(page)).toBe('/sessions');
    expect(await storedTokens(page)).toEqual(tokens);

    await page.unroute('**/trpc/auth.logoutAll**');
    await page.getByRole('button', { name: 'Sign out everywhere' }).click();
    await heading(page, 'Sign in').waitFor();
    expect(await storedTokens(page)).toBeNull();
  });

  it('signs this browser out even when the server cannot be told', async () => {
    const account = await registerAccount(h.t.app);
    const page = await h.newPage();
    await signIn(page, account.email, account.password);
    await page.route('**/trpc/auth.logout**', (route) => route.abort('internetdisconnected'));
    await page.getByRole('button', { name: 'Sign out' }).click();
    await heading(page, 'Sign in').waitFor();
    expect(await storedTokens(page)).toBeNull();
    await page.unroute('**/trpc/auth.logout**');
  });

  it('signs this browser out within seconds when the server never answers, saying it is signing out', async () => {
    const account = await registerAccount(h.t.app);
    const page = await h.newPage();
    await signIn(page, account.email, account.password);
    const logout = await holdCall(page, 'auth.logout');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await logout.arrived;
    const pending = page.getByRole('button', { name: 'Signing out…' });
    await pending.waitFor();
    expect(await pending.isDisabled()).toBe(true);
    // Before: signed in for as long as the call hung (a shared computer left signed in).
    await heading(page, 'Sign in').waitFor({ timeout: 15_000 });
    expect(await storedTokens(page)).toBeNull();
    await logout.stop(); // the call stays held: the page gave up on it
  });

  it("leaves another account's sign-in, made in another tab while this one signed out, in place", async () => {
    const first = await registerAccount(h.t.app);
    const second = await registerAccount(h.t.app);
    const tab = await h.newPage();
    await signIn(tab, first.email, first.password);
    const logout = await holdCall(tab, 'auth.logout');
    await tab.getByRole('button', { name: 'Sign out' }).click();
    await logout.arrived;
    const otherTab = await tab.context().newPage();
    await otherTab.goto('/sign-in');
    await submitPasswordSignIn(otherTab, second.email, second.password);
    await heading(otherTab, 'Notes').waitFor();
    const signedIn = await storedTokens(otherTab);
    logout.release();
    await logout.answered;
    await logout.stop();
    // Before: the first tab's sign-out cleared the second account's tokens.
    await tab.getByRole('button', { name: 'Sign out' }).waitFor();
    expect(await storedTokens(tab)).toEqual(signedIn);
    await otherTab.reload();
    await heading(otherTab, 'Notes').waitFor();
  });

  /** Two accounts, and a tab signed into the first, on its Profile page. */
  async function twoAccountsOnProfile() {
    const first = await registerAccount(h.t.app);
    const second = await registerAccount(h.t.app);
    const tab = await h.newPage();
    await signIn(tab, first.email, first.password);
    await tab.getByRole('link', { name: 'Profile' }).click();
    await tab.getByText(`Signed in as ${first.email}`).waitFor();
    return { first, second, tab };
  }

  it('follows another tab into another account or out of it, and keeps its page when the other tab signs into the same one', async () => {
    const { first, second, tab } = await twoAccountsOnProfile();
    const name = tab.getByRole('form', { name: 'Your name' }).getByLabel('Name');
    await name.fill('Typed, not saved');

    // Another tab of the same browser (the same tokens) signs into the same account again: nothing changes here.
    const otherTab = await tab.context().newPage();
    await otherTab.goto('/sign-in');
    await submitPasswordSignIn(otherTab, first.email, first.password);
    await heading(otherTab, 'Notes').waitFor();
    await tab.waitForTimeout(500);
    expect(await name.inputValue()).toBe('Typed, not saved');

    // Then into another account, without signing out: this tab is that account now, with nothing of the first.
    await otherTab.goto('/sign-in');
    await submitPasswordSignIn(otherTab, second.email, second.password);
    await heading(otherTab, 'Notes').waitFor();
    await tab.getByText(`Signed in as ${second.email}`).waitFor();
    expect(await tab.getByText(first.email).count()).toBe(0);
    expect(await name.inputValue()).not.toBe('Typed, not saved');
    expect(pathOf(tab)).toBe('/profile');

    // The other tab signs out: this one is signed out too.
    await otherTab.getByRole('button', { name: 'Sign out' }).click();
    await heading(tab, 'Sign in').waitFor();
    await status(tab, 'You signed out in another tab.').waitFor();
  });

  it('shows the account it now acts as when a change made as the last one answers after the switch', async () => {
    const { first, second, tab } = await twoAccountsOnProfile();
    // A new name is on its way, as the first account, when another tab signs into the second.
    const save = await holdCall(tab, 'users.updateMe');
    await tab.getByRole('form', { name: 'Your name' }).getByLabel('Name').fill('Renamed first');
    await tab.getByRole('button', { name: 'Save name' }).click();
    await save.arrived;
    const otherTab = await tab.context().newPage();
    await otherTab.goto('/sign-in');
    await submitPasswordSignIn(otherTab, second.email, second.password);
    await tab.getByText(`Signed in as ${second.email}`).waitFor();
    save.release();
    await save.answered;
    await tab.waitForTimeout(500);
    // The first account was renamed, as asked; this tab still shows the second, whose tokens it holds.
    expect(await tab.getByText(`Signed in as ${second.email}`).count()).toBe(1);
    expect(await tab.getByText(first.email).count()).toBe(0);
  });

  it('tells an administrator why a change of a user was refused (deleted meanwhile), not that the server is away', async () => {
    const member = await registerAccount(h.t.app);
    const adminPage = await adminSearchingFor(h, member.email);
    const disable = adminPage.getByRole('button', { name: `Disable ${member.email}` });
    await disable.waitFor();

    // Another administrator deletes the member while the page shows it.
    await h.t.services.db.deleteFrom('users').where('id', '=', member.id).execute();
    await disable.click();
    const alert = adminPage.getByRole('alert');
    await alert.waitFor();
    expect(await alert.getAttribute('data-app-code')).toBe('NOT_FOUND');
    expect(await alert.textContent()).not.toMatch(/could not be reached/);
  });
});
