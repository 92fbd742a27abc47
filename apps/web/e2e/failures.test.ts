/**
 * Failures the API did not describe (no app code) are said for what they are: an answer of
 * a proxy in front of the server (a 413 page of its own) names its status, a failure in the
 * page itself (the browser's storage full) is said as one. Only a request that got no answer
 * says the server could not be reached (sessions.test.ts).
 */
import { registerAccount } from '@app/server/testing';
import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import {
  describeInBrowser,
  type Harness,
  heading,
  signIn,
  solidPng,
  startHarness,
  storedTokens,
  submitPasswordSignIn,
} from './harness.ts';

/** A proxy's refusal: its own page, none of the API's JSON. */
const PROXY_413 = {
  status: 413,
  contentType: 'text/html',
  body: '<html><body><h1>413 Request Entity Too Large</h1></body></html>',
};

/** Fills the page's localStorage until not one more character fits. */
const fillLocalStorage = (page: Page) =>
  page.evaluate(() => {
    let key = 0;
    for (let size = 1 << 20; size >= 1; size >>= 1) {
      const filler = 'x'.repeat(size);
      try {
        for (;;) localStorage.setItem(`filler-${key++}`, filler);
      } catch {
        // Full for pieces of this size; a smaller one may still fit.
      }
    }
  });

describeInBrowser('failures the API did not describe', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness();
  });
  afterEach(() => h?.endTest());
  afterAll(() => h?.close());

  it('says a proxy refused a call or an upload, with its status, not that the server could not be reached', async () => {
    const account = await registerAccount(h.t.app);
    const page = await h.newPage();
    await signIn(page, account.email, account.password);
    await page.getByRole('link', { name: 'Profile' }).click();
    await heading(page, 'Profile').waitFor();

    await page.route('**/trpc/users.updateMe**', (route) => route.fulfill(PROXY_413));
    const nameForm = page.getByRole('form', { name: 'Your name' });
    await nameForm.getByLabel('Name').fill('Ada Lovelace');
    await nameForm.getByRole('button', { name: 'Save name' }).click();
    const refusedCall = nameForm.getByRole('alert');
    await refusedCall.waitFor();
    expect(await refusedCall.textContent()).toBe('The server refused the request (413).');

    await page.route('**/api/files', (route) => route.fulfill(PROXY_413));
    await page
      .getByLabel('Upload a picture (PNG, JPEG, GIF, WebP or AVIF)')
      .setInputFiles({ name: 'me.png', mimeType: 'image/png', buffer: solidPng(64, [200, 40, 40]) });
    const refusedUpload = page.getByRole('region', { name: 'Picture' }).getByRole('alert');
    await refusedUpload.waitFor();
    expect(await refusedUpload.textContent()).toBe('The server refused the request (413).');
  });

  it('says something went wrong in the page, not that the server could not be reached, when the browser cannot keep the session', async () => {
    const account = await registerAccount(h.t.app);
    const page = await h.newPage();
    await page.goto('/sign-in');
    await heading(page, 'Sign in').waitFor();
    await fillLocalStorage(page);

    // The server signs the person in; storing the tokens fails (QuotaExceededError).
    await submitPasswordSignIn(page, account.email, account.password);
    const alert = page.getByRole('form', { name: 'Sign in with a password' }).getByRole('alert');
    await alert.waitFor();
    expect(await alert.textContent()).toBe('Something went wrong on this page. Try again, or reload the page.');
    expect(await alert.getAttribute('data-app-code')).toBeNull();
    expect(await storedTokens(page)).toBeNull();
  });
});
