/**
 * Sign-in with an emailed code when the first try goes wrong: the code expired (or was
 * burned by wrong tries), or the address was mistyped. The form offers a new code and
 * another address instead of leaving the person stuck. The server's clock is the test's,
 * so a code can expire without waiting ten minutes.
 */
import { createClient } from '@app/sdk';
import { registerAccount } from '@app/server/testing';
import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import {
  describeInBrowser,
  type Harness,
  heading,
  mailTo,
  pathOf,
  startHarness,
  status,
  storedTokens,
  userRow,
} from './harness.ts';

describeInBrowser('sign-in with an emailed code, second tries', () => {
  let h: Harness;
  /** How far the server's clock is ahead of the real one. */
  let skewMs = 0;

  beforeAll(async () => {
    h = await startHarness({ overrides: { clock: { now: () => Date.now() + skewMs } } });
  });
  afterEach(() => h?.endTest());
  afterAll(() => h?.close());

  const codeForm = (page: Page) => page.getByRole('form', { name: 'Sign in with an email code' });

  /** The code of the newest one-time-code email to `to`. */
  const newestCode = async (to: string) => {
    const email = await mailTo(h.t, to, 'one-time-code');
    const code = /\b(\d{6})\b/.exec(email.text)?.[1];
    expect(code, email.text).toBeDefined();
    return code as string;
  };

  async function askForCode(page: Page, email: string) {
    await page.goto('/sign-in');
    await page.getByRole('button', { name: 'Email code' }).click();
    const form = codeForm(page);
    await form.getByLabel('Email').fill(email);
    await form.getByRole('button', { name: 'Email me a code' }).click();
    await status(form, `We sent a 6-digit code to ${email}`).waitFor();
    return form;
  }

  const signedInAs = async (page: Page) => {
    const tokens = await storedTokens(page);
    return (await createClient({ url: h.url, getAccessToken: () => tokens?.accessToken }).users.me.query()).email;
  };

  it('sends a new code when the first one has expired', async () => {
    const account = await registerAccount(h.t.app);
    const page = await h.newPage();
    const form = await askForCode(page, account.email);
    const first = await newestCode(account.email);

    // Eleven minutes later the code has expired (and the wait before another one is over).
    skewMs += 11 * 60_000;
    await form.getByLabel('Code').fill(first);
    await form.getByRole('button', { name: 'Sign in', exact: true }).click();
    const refusal = form.getByRole('alert');
    await refusal.waitFor();
    expect(await refusal.getAttribute('data-app-code')).toBe('INVALID_CODE');

    await form.getByRole('button', { name: 'Send a new code' }).click();
    await status(form, `We sent a new 6-digit code to ${account.email}`).waitFor();
    expect(await form.getByRole('alert').count()).toBe(0);
    expect(await form.getByLabel('Code').inputValue()).toBe('');
    let second = first;
    await expect
      .poll(async () => {
        second = await newestCode(account.email);
        return second;
      })
      .not.toBe(first);
    await form.getByLabel('Code').fill(second);
    await form.getByRole('button', { name: 'Sign in', exact: true }).click();
    await heading(page, 'Notes').waitFor();
    expect(pathOf(page)).toBe('/notes');
    expect(await signedInAs(page)).toBe(account.email);
  });

  it('lets a mistyped code be typed again (the error does not take the focus at each key)', async () => {
    const account = await registerAccount(h.t.app);
    const page = await h.newPage();
    const form = await askForCode(page, account.email);
    const code = await newestCode(account.email);
    const mistyped = `${code.slice(0, 5)}${(Number(code[5]) + 1) % 10}`;
    const field = form.getByLabel('Code');
    await field.fill(mistyped);
    await form.getByRole('button', { name: 'Sign in', exact: true }).click();
    await form.getByRole('alert').waitFor();

    // As a person does it: into the field, then key by key.
    await field.click();
    await page.keyboard.press('ControlOrMeta+A');
    await page.keyboard.type(code);
    expect(await field.inputValue()).toBe(code);
    await page.keyboard.press('Enter');
    await heading(page, 'Notes').waitFor();
    expect(await signedInAs(page)).toBe(account.email);
  });

  it('starts again with another address after a typo in the first', async () => {
    const account = await registerAccount(h.t.app);
    const typo = account.email.replace('@', 'x@');
    const page = await h.newPage();
    const form = await askForCode(page, typo);

    await form.getByRole('button', { name: 'Use another email' }).click();
    expect(await form.getByLabel('Code').count()).toBe(0);
    expect(await form.getByRole('status').count()).toBe(0);
    const email = form.getByLabel('Email');
    expect(await email.getAttribute('readonly')).toBeNull();
    expect(await email.inputValue()).toBe(typo);
    await email.fill(account.email);
    await form.getByRole('button', { name: 'Email me a code' }).click();
    await status(form, `We sent a 6-digit code to ${account.email}`).waitFor();

    await form.getByLabel('Code').fill(await newestCode(account.email));
    await form.getByRole('button', { name: 'Sign in', exact: true }).click();
    await heading(page, 'Notes').waitFor();
    expect(await signedInAs(page)).toBe(account.email);
    // The mistyped address got a code, but no account: only a code used creates one.
    await expect(userRow(h.t, typo)).rejects.toThrow();
  });
});
