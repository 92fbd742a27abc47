/**
 * Every page as a person sees it, checked with axe-core (no serious or critical violation)
 * and kept as a full-page screenshot in `<TEST_REPORT_DIR>/web-screenshots/<page>.png`.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { grantRole, registerAccount } from '@app/server/testing';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import {
  auditPage,
  describeInBrowser,
  type Harness,
  heading,
  linkIn,
  mailTo,
  signIn,
  startHarness,
  status,
  submitPasswordSignIn,
} from './harness.ts';

describeInBrowser('every page, with axe-core and a screenshot', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness();
  });
  afterEach(() => h?.endTest());
  afterAll(() => h?.close());

  it('has no serious or critical accessibility violation on any page', async () => {
    // The app's paths audited, as the browser was on them.
    const audited = new Set<string>();
    const audit = async (name: string) => {
      await auditPage(page, name);
      audited.add(new URL(page.url()).pathname.replace(/^\//, ''));
    };
    const admin = await registerAccount(h.t.app, { name: 'Ada Admin' });
    await grantRole(h.t.services.db, admin.id, 'admin');
    // The audit's script is injected inline, which the app's CSP refuses (as it should).
    const page = await h.newPage({ bypassCSP: true });

    await page.goto('/sign-in');
    await heading(page, 'Sign in').waitFor();
    await audit('sign-in');
    await submitPasswordSignIn(page, admin.email, 'Not-the-password-1');
    await page.getByRole('alert').waitFor();
    await audit('sign-in-error');
    await page.getByRole('button', { name: 'Email code' }).click();
    await page.getByRole('form', { name: 'Sign in with an email code' }).waitFor();
    await audit('sign-in-code');

    await page.goto('/sign-up');
    await heading(page, 'Create an account').waitFor();
    await audit('sign-up');

    await page.goto('/forgot-password');
    await heading(page, 'Forgot your password?').waitFor();
    await audit('forgot-password');
    await page.getByLabel('Email').fill(admin.email);
    await page.getByRole('button', { name: 'Email me a link' }).click();
    await status(page, 'we sent it a link').waitFor();
    await audit('forgot-password-sent');

    await page.goto(linkIn(await mailTo(h.t, admin.email, 'reset-password'), `${h.url}/reset-password?token=`));
    await heading(page, 'Choose a new password').waitFor();
    await audit('reset-password');

    // Signed out, the link asks to sign in first.
    await page.goto(linkIn(await mailTo(h.t, admin.email, 'verify-email'), `${h.url}/verify-email?token=`));
    await page.getByText('Sign in to the account this link was sent to').waitFor();
    await audit('verify-email');

    await signIn(page, admin.email, admin.password);
    const newNote = page.getByRole('group', { name: 'New note' });
    await newNote.getByLabel('Title').fill('Accessible note');
    await newNote.getByLabel('Text').fill('Checked with axe-core.');
    await newNote.getByRole('button', { name: 'Add note' }).click();
    await page.getByRole('button', { name: 'Edit “Accessible note”' }).waitFor();
    await page.locator('[aria-busy="true"]').waitFor({ state: 'detached' });
    await audit('notes');

    await page.getByRole('link', { name: 'Profile' }).click();
    await heading(page, 'Profile').waitFor();
    await audit('profile');

    await page.getByRole('link', { name: 'Sessions' }).click();
    await page.getByRole('table', { name: 'Your active sessions' }).waitFor();
    await audit('sessions');

    await page.getByRole('link', { name: 'Users' }).click();
    await page.getByRole('button', { name: `Disable ${admin.email}` }).waitFor();
    await audit('admin-users');

    await page.getByRole('link', { name: 'Roles' }).click();
    await page.getByRole('group', { name: /^admin/ }).waitFor();
    await audit('admin-roles');

    // A provider's sign-in that came back refused (its success only passes the browser on).
    await page.goto('/oauth/return?error=OAUTH_PROVIDER_ERROR');
    await page.getByRole('alert').waitFor();
    await audit('oauth-return-error');

    // Every page the app routes to (routes.tsx) was audited.
    const routes = [
      ...readFileSync(path.join(import.meta.dirname, '../src/routes.tsx'), 'utf8').matchAll(/path: '([^'*]+)'/g),
    ].map((match) => match[1] as string);
    expect(routes.length).toBeGreaterThan(5);
    expect([...audited]).toEqual(expect.arrayContaining(routes));
  });
});
