/**
 * Provider sign-in in the browser, through a local fake OpenID Connect provider: the
 * sign-in page's button, the provider, the server's callback, /oauth/return and the
 * exchange, bound to this browser by the app's PKCE challenge.
 */
import { createHash } from 'node:crypto';
import { type FakeOidcProvider, startFakeOidcProvider } from '@app/server/testing';
import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { describeInBrowser, type Harness, heading, pathOf, startHarness } from './harness.ts';

describeInBrowser('sign-in with a provider', () => {
  let provider: FakeOidcProvider;
  let h: Harness;

  beforeAll(async () => {
    provider = await startFakeOidcProvider({ clientId: 'web-client', clientSecret: 'web-secret' });
    h = await startHarness({
      env: (url) => ({
        OAUTH_REDIRECT_ORIGINS: url,
        OAUTH_OIDC_ISSUER: provider.issuer,
        OAUTH_OIDC_CLIENT_ID: 'web-client',
        OAUTH_OIDC_CLIENT_SECRET: 'web-secret',
      }),
    });
  });
  afterEach(() => h?.endTest());
  afterAll(async () => {
    await h?.close();
    await provider?.close();
  });

  it('signs in through the provider and lands on the notes', async () => {
    const sub = `web-${Date.now()}`;
    const email = `${sub}@acme.test`;
    provider.user = { sub, email, email_verified: true, name: 'Grace Hopper' };
    const page = await h.newPage();
    const documents: URL[] = [];
    const exchanges: string[] = [];
    page.on('request', (request) => {
      const url = new URL(request.url());
      if (request.isNavigationRequest()) documents.push(url);
      if (url.pathname.startsWith('/trpc/') && url.pathname.includes('auth.oauth.exchange')) {
        exchanges.push(request.postData() ?? '');
      }
    });

    await page.goto('/sign-in');
    await page.getByRole('button', { name: 'Continue with Single sign-on' }).click();
    await heading(page, 'Notes').waitFor();
    expect(pathOf(page)).toBe('/notes');
    expect(await page.getByText('Please confirm your email address').count()).toBe(0);

    // The way there: the server's start (with our challenge), the provider, back to /oauth/return.
    const start = documents.find((url) => url.pathname === '/api/auth/oauth/oidc/start');
    expect(start?.searchParams.get('redirectTo')).toBe(`${h.url}/oauth/return`);
    const challenge = start?.searchParams.get('codeChallenge');
    expect(challenge).toMatch(/^[\w-]{43}$/);
    expect(documents.some((url) => url.href.startsWith(`${provider.issuer}/authorize`))).toBe(true);
    const returned = documents.find((url) => url.origin === h.url && url.pathname === '/oauth/return');
    expect(returned?.searchParams.get('code')).toBeTruthy();
    expect(provider.requests).toContainEqual({ method: 'POST', path: '/token' });

    // The exchange sent the verifier of that challenge.
    expect(exchanges).toHaveLength(1);
    const input = Object.values(JSON.parse(exchanges[0] ?? '{}') as Record<string, { codeVerifier?: string }>)[0];
    const verifier = input?.codeVerifier ?? '';
    expect(createHash('sha256').update(verifier).digest('base64url')).toBe(challenge);
    expect(await page.evaluate(() => sessionStorage.getItem('app.oauth.verifier'))).toBeNull();

    // The account exists, linked to the provider, and the profile lists the link.
    const user = await h.t.services.db
      .selectFrom('users')
      .innerJoin('user_identities', 'user_identities.user_id', 'users.id')
      .select(['users.name', 'users.email_verified_at', 'user_identities.provider', 'user_identities.subject'])
      .where('users.email', '=', email)
      .executeTakeFirstOrThrow();
    expect(user).toMatchObject({ name: 'Grace Hopper', provider: 'oidc', subject: sub });
    expect(user.email_verified_at).not.toBeNull();
    await page.getByRole('link', { name: 'Profile' }).click();
    await page.getByRole('heading', { name: 'Linked sign-in providers' }).waitFor();
    await page
      .getByRole('listitem')
      .filter({ hasText: `oidc (${email})` })
      .waitFor();
  });

  /** A provider's new person, signing in for the first time. */
  const newPerson = () => {
    const sub = `web-${Date.now()}-${Math.random().toString(36).slice(2)}`;
    provider.user = { sub, email: `${sub}@acme.test`, email_verified: true, name: 'Grace Hopper' };
  };
  const ssoButton = (page: Page) => page.getByRole('button', { name: 'Continue with Single sign-on' });

  it('lands back on the page the person was sent to sign in from, query included', async () => {
    newPerson();
    const page = await h.newPage();
    await page.goto('/profile?section=picture');
    await heading(page, 'Sign in').waitFor();
    await ssoButton(page).click();
    await heading(page, 'Profile').waitFor();
    const landed = new URL(page.url());
    expect(`${landed.origin}${landed.pathname}${landed.search}`).toBe(`${h.url}/profile?section=picture`);
  });

  it('never leaves the app after the sign-in, whatever return path the tab holds', async () => {
    const hostile = [
      '//evil.test/',
      'https://evil.test/',
      '/\\evil.test/',
      '/\t/evil.test/',
      '/.//evil.test/',
      '/%2e//evil.test/',
    ];
    for (const elsewhere of hostile) {
      newPerson();
      const page = await h.newPage();
      // The kept return path is rewritten when the provider sends the tab back.
      await page.addInitScript((path) => {
        if (window.location.pathname === '/oauth/return') sessionStorage.setItem('app.oauth.returnTo', path);
      }, elsewhere);
      await page.goto('/sign-in');
      await ssoButton(page).click();
      await heading(page, 'Notes').waitFor();
      expect(page.url(), elsewhere).toBe(`${h.url}/notes`);
    }
  });

  it('says in the form that a provider sign-in needs a secure page, on plain http away from this machine', async () => {
    const page = await h.newPage();
    // The app under a name of no secure context (http, not localhost), answered by the test's server.
    const insecure = 'http://app.example.test';
    await page.route(`${insecure}/**`, async (route) => {
      const url = new URL(route.request().url());
      await route.fulfill({ response: await route.fetch({ url: `${h.url}${url.pathname}${url.search}` }) });
    });
    await page.goto(`${insecure}/sign-in`);
    expect(await page.evaluate(() => window.isSecureContext)).toBe(false);

    await ssoButton(page).click();
    const alert = page.getByRole('region', { name: 'Sign in with a provider' }).getByRole('alert');
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(/^Signing in with a provider needs a secure \(https\) address/);
    expect(new URL(page.url()).href).toBe(`${insecure}/sign-in`);
  });

  it('says in words why a sign-in did not complete, and never shows the address’s own text', async () => {
    // Cancelled at the provider: back with error=OAUTH_DENIED, said as a sentence.
    const page = await h.newPage();
    provider.nextOutcome = 'deny';
    await page.goto('/sign-in');
    await page.getByRole('button', { name: 'Continue with Single sign-on' }).click();
    await page.waitForURL((url) => url.pathname === '/oauth/return');
    expect(new URL(page.url()).searchParams.get('error')).toBe('OAUTH_DENIED');
    const denied = page.getByRole('alert');
    await denied.waitFor();
    expect(await denied.textContent()).toBe('The sign-in was cancelled at the provider. Try again when you are ready.');
    expect(await denied.getAttribute('data-app-code')).toBe('OAUTH_DENIED');
    await page.getByRole('link', { name: 'Back to sign in' }).waitFor();

    // Another known code, as the server would send it.
    await page.goto('/oauth/return?error=EMAIL_TAKEN');
    const taken = page.getByRole('alert');
    await taken.waitFor();
    expect(await taken.getAttribute('data-app-code')).toBe('EMAIL_TAKEN');
    expect(await taken.textContent()).toMatch(/^An account already uses this email address/);

    // A link made up by anyone: its text is not the app's to say.
    const crafted = 'Your account is locked: call +1 555 0100 to unlock it';
    await page.goto(`/oauth/return?error=${encodeURIComponent(crafted)}`);
    const generic = page.getByRole('alert');
    await generic.waitFor();
    expect(await generic.textContent()).toBe('The sign-in did not complete. Try again, or sign in another way.');
    expect(await generic.getAttribute('data-app-code')).toBeNull();
    expect(await page.locator('body').textContent()).not.toContain('call +1 555');
  });

  it('never exchanges a code from a sign-in this tab did not start (login CSRF)', async () => {
    const page = await h.newPage();
    const exchanges: string[] = [];
    page.on('request', (request) => {
      if (request.url().includes('auth.oauth.exchange')) exchanges.push(request.url());
    });
    // Someone else's code, as a link sent to this browser: no verifier of ours goes with it.
    await page.goto('/oauth/return?code=someone-elses-code');
    await page.getByText('This sign-in was not started in this browser tab').waitFor();
    expect(exchanges).toEqual([]);
    expect(pathOf(page)).toBe('/oauth/return');
  });
});
