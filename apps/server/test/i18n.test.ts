/**
 * Error messages and emails in the language of the request (or of the account): the
 * catalogues cover every message of the code, `Accept-Language` picks the language, and
 * both transports answer in it without touching `code` or `appCode`.
 * (Email catalogues: test/email-templates.test.ts checks every key in every locale.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { AppError } from '../src/errors/app-error.ts';
import { APP_ERROR_CODES } from '../src/errors/app-error-codes.ts';
import { ERROR_CATALOGUES, errorMessage, issueMessage } from '../src/i18n/errors.ts';
import { interpolate, LOCALES, negotiateLocale, preferredLocale } from '../src/i18n/locale.ts';
import {
  type Account,
  bearer,
  buildTestApp,
  grantRole,
  registerAccount,
  registerAdmin,
  startTestServer,
  type TestApp,
  testRouter,
  uniqueEmail,
} from './helpers/index.ts';
import { translatableStrings } from './helpers/translatable-strings.ts';

const NBSP = '\u00a0';
const fr = (text: string) => text.replaceAll(' :', `${NBSP}:`).replaceAll(' ;', `${NBSP};`);
const placeholders = (text: string) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

/**
 * AppErrors whose message is not a literal, so no catalogue can hold it: each must be one
 * no client needs translated. A new one fails the test: make its message a literal template
 * with `{placeholders}` in `params` (the catalogue key), or add it here with the reason.
 */
const DYNAMIC_MESSAGES_ALLOWED = [
  // The ID token library's own reason (signature, issuer…): answered as is; the app code says the rest.
  'modules/auth/sso.service.ts error.message',
];
/** Templates the catalogues translate that no `new AppError(code, '…')` holds. */
const MESSAGES_NOT_IN_APP_ERRORS = ['Input validation failed'];

describe('error catalogues', () => {
  const scanned = translatableStrings();
  const templates = [...scanned.errorMessages.keys()];
  const issues = [...scanned.issueMessages.keys()];
  const others = LOCALES.filter((locale) => locale !== 'en');

  it('finds the strings it checks (the scanner still reads the source)', () => {
    expect(templates.length).toBeGreaterThan(50);
    expect(templates).toContain('Missing permission: {permission}');
    expect(issues).toContain('must be a UUID');
  });

  it.each(LOCALES)('%s has a message for every app code, and no other code', (locale) => {
    const { codes } = ERROR_CATALOGUES[locale];
    expect(Object.keys(codes).sort()).toEqual(Object.keys(APP_ERROR_CODES).sort());
    for (const [code, message] of Object.entries(codes)) {
      expect(message.trim(), `${locale} codes.${code}`).not.toBe('');
      // codeMessage fills nothing in: a placeholder would reach the client as written.
      expect(message, `${locale} codes.${code}`).not.toMatch(/[{}]/);
    }
  });

  it('English translates nothing: its messages are the code’s own', () => {
    expect(ERROR_CATALOGUES.en.messages).toEqual({});
    expect(ERROR_CATALOGUES.en.issues).toEqual({});
  });

  it.each(others)('%s translates every AppError message, with the same placeholders', (locale) => {
    const { messages } = ERROR_CATALOGUES[locale];
    const missing = [...templates, ...MESSAGES_NOT_IN_APP_ERRORS].filter((template) => !messages[template]?.trim());
    expect(
      missing.map((template) => `${scanned.errorMessages.get(template) ?? '(errors/error-body.ts)'}: ${template}`),
      `add these to src/i18n/locales/${locale}/errors.json "messages"`,
    ).toEqual([]);
    for (const [template, translation] of Object.entries(messages)) {
      expect(placeholders(translation), `${locale} messages["${template}"]`).toEqual(placeholders(template));
    }
  });

  it.each(others)('%s translates every message of the input schemas', (locale) => {
    const translated = ERROR_CATALOGUES[locale].issues;
    const missing = issues.filter((message) => !translated[message]?.trim());
    expect(
      missing.map((message) => `${scanned.issueMessages.get(message)}: ${message}`),
      `add these to src/i18n/locales/${locale}/errors.json "issues"`,
    ).toEqual([]);
    for (const [message, translation] of Object.entries(translated)) {
      expect(placeholders(translation), `${locale} issues["${message}"]`).toEqual(placeholders(message));
    }
  });

  it.each(others)('%s translates nothing the code no longer says', (locale) => {
    const { messages, issues: translatedIssues } = ERROR_CATALOGUES[locale];
    const used = new Set([...templates, ...MESSAGES_NOT_IN_APP_ERRORS]);
    expect(
      Object.keys(messages).filter((key) => !used.has(key)),
      `stale "messages" in ${locale}/errors.json`,
    ).toEqual([]);
    expect(
      Object.keys(translatedIssues).filter((key) => !scanned.issueMessages.has(key)),
      `stale "issues" in ${locale}/errors.json`,
    ).toEqual([]);
  });

  it('knows every AppError whose message is not a literal (no catalogue can translate it)', () => {
    const dynamic = scanned.dynamicErrorMessages.map((where) => where.replace(/:\d+ /, ' '));
    expect(
      dynamic,
      'an AppError message must be a literal template (variable parts in `params`) so it can be translated; ' +
        'if it cannot be, add it to DYNAMIC_MESSAGES_ALLOWED with the reason',
    ).toEqual(DYNAMIC_MESSAGES_ALLOWED);
  });

  it('French follows French typography (README): a non-breaking space before : ; ? !, the ’ apostrophe', () => {
    const { codes, messages, issues: translatedIssues } = ERROR_CATALOGUES.fr;
    for (const text of [...Object.values(codes), ...Object.values(messages), ...Object.values(translatedIssues)]) {
      // A header as it is written (`Authorization: Bearer`) is code, not prose.
      const prose = text.replace(/Authorization: Bearer/g, '');
      expect(prose, text).not.toMatch(/ [:;?!]/);
      expect(prose, text).not.toMatch(/[^\s\u00a0\u202f][:;?!](\s|$)/);
      expect(prose, text).not.toContain("'");
    }
  });
});

describe('negotiateLocale', () => {
  it.each([
    [undefined, 'en'],
    ['', 'en'],
    ['fr', 'fr'],
    ['fr-CA', 'fr'],
    ['FR', 'fr'],
    ['fr-ca, en;q=0.5', 'fr'],
    ['de, fr;q=0.5', 'fr'],
    ['fr;q=0, en', 'en'],
    ['fr;q=0', 'en'],
    ['en;q=0.4, fr;q=0.8', 'fr'],
    ['en, fr', 'en'],
    ['fr, en', 'fr'],
    ['de, *;q=0.1', 'en'],
    ['*', 'en'],
    ['de, ja', 'en'],
    ['fr;q=abc', 'en'],
    ['fr;q=abc, en;q=0.1', 'en'],
    ['fr;q=2', 'en'],
    ['fr;q=-1, en', 'en'],
    ['fr ; q=0.9 , en;q=0.8', 'fr'],
    [';;;,,,==', 'en'],
    ['français', 'en'],
    ['\u0000fr', 'en'],
  ] as const)('%j -> %s', (header, expected) => {
    expect(negotiateLocale(header)).toBe(expected);
  });

  it('reads a very long or hostile header without throwing (English)', () => {
    expect(negotiateLocale('x'.repeat(100_000))).toBe('en');
    expect(negotiateLocale(`${'de;q=0.1,'.repeat(10_000)}fr`)).toBe('en');
    expect(negotiateLocale('q=;'.repeat(10_000))).toBe('en');
  });
});

describe('choosing the words', () => {
  const issuesOf = (schema: z.ZodType, input: unknown) => schema.safeParse(input).error?.issues ?? [];

  it('translates an AppError by its template and fills its params; English keeps the code’s words', () => {
    const error = new AppError('PERMISSION_DENIED', 'Missing permission: {permission}', {
      params: { permission: 'notes:read' },
    });
    expect(error.message).toBe('Missing permission: notes:read');
    expect(errorMessage('en', error)).toBe('Missing permission: notes:read');
    expect(errorMessage('fr', error)).toBe(`Permission manquante${NBSP}: notes:read`);
    const untranslated = new AppError('NOT_FOUND', 'No such gadget');
    expect(errorMessage('en', untranslated)).toBe('No such gadget');
    expect(errorMessage('fr', untranslated)).toBe(ERROR_CATALOGUES.fr.codes.NOT_FOUND);
  });

  it('translates zod’s own messages with zod’s locale, a schema’s through the catalogue, and leaves others be', () => {
    const [tooSmall] = issuesOf(z.string().min(3), 'a');
    expect(issueMessage('en', tooSmall as z.core.$ZodIssue)).toBe('Too small: expected string to have >=3 characters');
    expect(issueMessage('fr', tooSmall as z.core.$ZodIssue)).toMatch(/^Trop petit/);
    const [own] = issuesOf(z.string().min(8, { error: 'must be at least 8 characters' }), 'a');
    expect(issueMessage('fr', own as z.core.$ZodIssue)).toBe('doit comporter au moins 8 caractères');
    // A schema message no catalogue has stays as written: never replaced by zod's generic one.
    const [unknown] = issuesOf(z.string().min(3, { error: 'too short for a gadget' }), 'a');
    expect(issueMessage('fr', unknown as z.core.$ZodIssue)).toBe('too short for a gadget');
    const [received] = issuesOf(z.object({ a: z.string() }), { a: null });
    expect(issueMessage('fr', received as z.core.$ZodIssue)).toBe(
      'Entrée invalide : chaîne de caractères attendu, null reçu',
    );
  });

  it('interpolates only the placeholders it has values for', () => {
    expect(interpolate('{a} and {b}', { a: 1 })).toBe('1 and {b}');
    expect(interpolate('{a}', undefined)).toBe('{a}');
    expect(interpolate('{a}', { a: '{b}', b: 'x' })).toBe('{b}');
  });

  it('writes to an account in its own language, else the request’s, else English', () => {
    expect(preferredLocale('fr', 'en')).toBe('fr');
    expect(preferredLocale('en', 'fr')).toBe('en');
    expect(preferredLocale(null, 'fr')).toBe('fr');
    expect(preferredLocale('de', 'fr')).toBe('fr');
    expect(preferredLocale(undefined, undefined)).toBe('en');
  });
});

interface Answer {
  status: number;
  language: string | null;
  vary: string | null;
  // biome-ignore lint/suspicious/noExplicitAny: JSON bodies of several shapes.
  body: any;
}

describe('errors in the language of the request (REST and tRPC, over HTTP)', () => {
  let t: TestApp & { url: string };
  let user: Account;
  let admin: Account;
  beforeAll(async () => {
    t = await startTestServer({ router: testRouter, env: { BODY_LIMIT_BYTES: '2048' } });
    user = await registerAccount(t.app);
    admin = await registerAdmin(t.app, t.services.db);
  });
  afterAll(() => t.close());

  async function call(
    method: string,
    path: string,
    options: { body?: unknown; raw?: string; lang?: string; headers?: Record<string, string> } = {},
  ): Promise<Answer> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.lang !== undefined) headers['accept-language'] = options.lang;
    let body: string | undefined;
    if (options.raw !== undefined || options.body !== undefined) {
      headers['content-type'] ??= 'application/json';
      body = options.raw ?? JSON.stringify(options.body);
    }
    const response = await fetch(`${t.url}${path}`, { method, headers, body });
    const text = await response.text();
    return {
      status: response.status,
      language: response.headers.get('content-language'),
      vary: response.headers.get('vary'),
      body: JSON.parse(text),
    };
  }
  const q = (value: unknown) => encodeURIComponent(JSON.stringify(value));

  describe('a service’s error', () => {
    const wrongLogin = () => ({ body: { email: user.email, password: 'Wrong-pass-1' } });

    it('REST: French with Accept-Language: fr; appCode and code unchanged', async () => {
      const answer = await call('POST', '/api/auth/login', { ...wrongLogin(), lang: 'fr' });
      expect(answer.status).toBe(401);
      expect(answer.language).toBe('fr');
      // A shared cache must not hand this French answer to someone who asked in English.
      expect(answer.vary).toMatch(/(^|, )Accept-Language(,|$)/);
      expect(answer.body).toEqual({
        code: 'UNAUTHORIZED',
        appCode: 'INVALID_CREDENTIALS',
        message: 'Adresse e-mail ou mot de passe incorrect',
        requestId: expect.any(String),
      });
      const regional = await call('POST', '/api/auth/login', { ...wrongLogin(), lang: 'fr-CA,fr;q=0.9,en;q=0.5' });
      expect(regional.body.message).toBe('Adresse e-mail ou mot de passe incorrect');
    });

    it.each([
      ['no header', undefined],
      ['en', 'en'],
      ['a language we do not ship', 'de'],
    ])('REST: English as before with %s', async (_, lang) => {
      const answer = await call('POST', '/api/auth/login', { ...wrongLogin(), ...(lang && { lang }) });
      expect(answer.status).toBe(401);
      expect(answer.language).toBe('en');
      expect(answer.body).toMatchObject({
        code: 'UNAUTHORIZED',
        appCode: 'INVALID_CREDENTIALS',
        message: 'Email or password is incorrect',
      });
    });

    it('tRPC: French in error.message, the rest of the shape unchanged; English without the header', async () => {
      const french = await call('POST', '/trpc/auth.login', { ...wrongLogin(), lang: 'fr' });
      expect(french.status).toBe(401);
      expect(french.body.error).toMatchObject({
        message: 'Adresse e-mail ou mot de passe incorrect',
        code: -32001,
        data: { code: 'UNAUTHORIZED', httpStatus: 401, appCode: 'INVALID_CREDENTIALS', path: 'auth.login' },
      });
      // Said, as over REST, so that a cache keeps one answer per language.
      expect(french.language).toBe('fr');
      expect(french.vary).toMatch(/Accept-Language/);
      const english = await call('POST', '/trpc/auth.login', wrongLogin());
      expect(english.language).toBe('en');
      expect(english.body.error).toMatchObject({
        message: 'Email or password is incorrect',
        code: -32001,
        data: { code: 'UNAUTHORIZED', appCode: 'INVALID_CREDENTIALS' },
      });
    });

    it('fills a template’s placeholders in French (PERMISSION_DENIED), on both transports', async () => {
      const rest = await call('GET', '/api/users', { lang: 'fr', headers: bearer(user) });
      expect(rest.status).toBe(403);
      expect(rest.body).toMatchObject({
        code: 'FORBIDDEN',
        appCode: 'PERMISSION_DENIED',
        message: fr('Permission manquante : users:read'),
        details: { permission: 'users:read' },
      });
      const trpc = await call('GET', `/trpc/users.list?input=${q({})}`, { lang: 'fr', headers: bearer(user) });
      expect(trpc.body.error.message).toBe(rest.body.message);
      expect(trpc.body.error.data).toMatchObject({
        appCode: 'PERMISSION_DENIED',
        details: { permission: 'users:read' },
      });
      const english = await call('GET', '/api/users', { headers: bearer(user) });
      expect(english.body.message).toBe('Missing permission: users:read');
    });

    it('fills a number in French (RATE_LIMITED of a second code too soon)', async () => {
      const email = uniqueEmail('otp');
      expect((await call('POST', '/api/auth/otp/request', { body: { email }, lang: 'fr' })).status).toBe(200);
      const again = await call('POST', '/api/auth/otp/request', { body: { email }, lang: 'fr' });
      expect(again.status).toBe(429);
      const seconds = again.body.details.retryAfterSeconds;
      expect(seconds).toBeGreaterThan(0);
      expect(again.body).toMatchObject({
        appCode: 'RATE_LIMITED',
        message: `Attendez ${seconds} s avant de demander un autre code`,
      });
      await t.settle();
    });

    it('falls back to the app code’s message for a message without a translation', async () => {
      // The probe's 'That name is taken' exists only in tests: no catalogue has it.
      const french = await call('GET', `/api/probe/fail?kind=conflict`, { lang: 'fr' });
      expect(french.status).toBe(409);
      expect(french.body).toMatchObject({
        code: 'CONFLICT',
        appCode: 'CONFLICT',
        message: ERROR_CATALOGUES.fr.codes.CONFLICT,
        details: { field: 'name' },
      });
      const english = await call('GET', `/api/probe/fail?kind=conflict`);
      expect(english.body.message).toBe('That name is taken');
    });

    it('never leaks an internal error, in any language', async () => {
      for (const lang of ['fr', 'en']) {
        const rest = await call('GET', '/api/probe/fail?kind=internal', { lang });
        expect(rest.status).toBe(500);
        expect(rest.body).toMatchObject({ code: 'INTERNAL_SERVER_ERROR', appCode: 'INTERNAL_ERROR' });
        expect(rest.body.message).toBe(ERROR_CATALOGUES[lang as 'fr' | 'en'].codes.INTERNAL_ERROR);
        const trpc = await call('GET', `/trpc/probe.fail?input=${q({ kind: 'internal' })}`, { lang });
        expect(trpc.body.error.message).toBe(rest.body.message);
        expect(JSON.stringify([rest.body, trpc.body])).not.toContain('secret_table');
      }
    });
  });

  describe('validation', () => {
    const tooLong = { name: 'x'.repeat(30), count: 'three' };

    it('REST: zod’s own messages in French; paths and codes unchanged', async () => {
      const french = await call('POST', '/api/probe/echo', { body: tooLong, lang: 'fr' });
      expect(french.status).toBe(400);
      expect(french.language).toBe('fr');
      expect(french.body).toMatchObject({
        code: 'BAD_REQUEST',
        appCode: 'VALIDATION_FAILED',
        message: 'Les données envoyées ne sont pas valides',
      });
      expect(french.body.issues).toEqual([
        { path: ['name'], code: 'too_big', message: 'Trop grand : chaîne de caractères doit avoir <=20 caractères' },
        {
          path: ['count'],
          code: 'invalid_type',
          message: 'Entrée invalide : nombre attendu, chaîne de caractères reçu',
        },
      ]);
      const english = await call('POST', '/api/probe/echo', { body: tooLong });
      expect(english.body.message).toBe('Input validation failed');
      expect(english.body.issues).toEqual([
        { path: ['name'], code: 'too_big', message: 'Too big: expected string to have <=20 characters' },
        { path: ['count'], code: 'invalid_type', message: 'Invalid input: expected number, received string' },
      ]);
    });

    it('tRPC: the same issues in error.data', async () => {
      const french = await call('POST', '/trpc/probe.echo', { body: tooLong, lang: 'fr' });
      expect(french.status).toBe(400);
      expect(french.body.error.message).toBe('Les données envoyées ne sont pas valides');
      expect(french.body.error.data).toMatchObject({ code: 'BAD_REQUEST', appCode: 'VALIDATION_FAILED' });
      expect(french.body.error.data.issues.map((issue: { message: string }) => issue.message)).toEqual([
        'Trop grand : chaîne de caractères doit avoir <=20 caractères',
        'Entrée invalide : nombre attendu, chaîne de caractères reçu',
      ]);
    });

    it('a schema’s own messages come from the catalogue (register with a short password, or the email as password)', async () => {
      const short = await call('POST', '/api/auth/register', {
        body: { email: uniqueEmail(), password: 'abc1' },
        lang: 'fr',
      });
      expect(short.status).toBe(400);
      expect(short.body).toMatchObject({
        appCode: 'VALIDATION_FAILED',
        message: 'Les données envoyées ne sont pas valides',
      });
      expect(short.body.issues).toEqual([
        { path: ['password'], code: 'too_small', message: 'doit comporter au moins 8 caractères' },
      ]);
      const email = uniqueEmail();
      const same = await call('POST', '/trpc/auth.register', { body: { email, password: email }, lang: 'fr' });
      expect(same.body.error.data.issues).toEqual([
        { path: ['password'], code: 'custom', message: 'ne doit pas être l’adresse e-mail' },
      ]);
      const english = await call('POST', '/api/auth/register', { body: { email: uniqueEmail(), password: 'abc1' } });
      expect(english.body.issues).toEqual([
        { path: ['password'], code: 'too_small', message: 'must be at least 8 characters' },
      ]);
    });
  });

  describe('refusals no procedure made', () => {
    it('an unknown route: ROUTE_NOT_FOUND in French, Content-Language: fr', async () => {
      const french = await call('GET', '/api/nope', { lang: 'fr' });
      expect(french.status).toBe(404);
      expect(french.language).toBe('fr');
      expect(french.body).toMatchObject({
        code: 'NOT_FOUND',
        appCode: 'ROUTE_NOT_FOUND',
        message: 'Aucune route pour cette méthode et ce chemin',
      });
      const english = await call('GET', '/api/nope');
      expect(english.language).toBe('en');
      expect(english.body).toMatchObject({ appCode: 'ROUTE_NOT_FOUND', message: 'No route for GET /api/nope' });
    });

    it('a malformed JSON body: 400 in French', async () => {
      const french = await call('POST', '/api/auth/login', { raw: '{"email":', lang: 'fr' });
      expect(french.status).toBe(400);
      expect(french.language).toBe('fr');
      expect(french.body).toMatchObject({
        code: 'BAD_REQUEST',
        appCode: 'BAD_REQUEST',
        message: 'La requête est illisible',
      });
      const trpc = await call('POST', '/trpc/auth.login', { raw: '{"email":', lang: 'fr' });
      expect(trpc.status).toBe(400);
      expect(trpc.body.error).toMatchObject({ message: 'La requête est illisible', data: { appCode: 'BAD_REQUEST' } });
    });

    it('a body too large (413) and one that is not JSON (415): in French', async () => {
      const large = await call('POST', '/api/auth/login', {
        body: { email: 'a@example.com', password: 'x'.repeat(4096) },
        lang: 'fr',
      });
      expect(large.status).toBe(413);
      expect(large.language).toBe('fr');
      expect(large.body).toMatchObject({
        appCode: 'PAYLOAD_TOO_LARGE',
        message: 'Le corps de la requête est trop volumineux',
      });
      const plain = await call('POST', '/api/auth/login', {
        raw: 'hello',
        lang: 'fr',
        headers: { 'content-type': 'text/plain' },
      });
      expect(plain.status).toBe(415);
      expect(plain.language).toBe('fr');
      expect(plain.body).toMatchObject({
        appCode: 'UNSUPPORTED_MEDIA_TYPE',
        message: 'Ce type de contenu n’est pas accepté',
      });
    });

    it('tRPC: an unknown procedure in French', async () => {
      const french = await call('GET', '/trpc/nope', { lang: 'fr' });
      expect(french.status).toBe(404);
      expect(french.body.error).toMatchObject({
        message: ERROR_CATALOGUES.fr.codes.NOT_FOUND,
        data: { code: 'NOT_FOUND', appCode: 'NOT_FOUND' },
      });
    });
  });

  describe('batches', () => {
    it('answers each item’s error in the caller’s language, appCode unchanged', async () => {
      const fresh = uniqueEmail('batch');
      const items = [{ email: admin.email }, { email: 'not-an-email' }, { email: fresh }];
      const rest = await call('POST', '/api/users/batch', { body: { items }, lang: 'fr', headers: bearer(admin) });
      expect(rest.status).toBe(200);
      expect(rest.body).toMatchObject({ succeeded: 1, failed: 2 });
      expect(rest.body.results[0]).toMatchObject({
        index: 0,
        ok: false,
        error: { appCode: 'EMAIL_TAKEN', message: 'Un compte utilise déjà cette adresse e-mail' },
      });
      expect(rest.body.results[1]).toMatchObject({
        index: 1,
        ok: false,
        error: {
          appCode: 'VALIDATION_FAILED',
          message: 'Les données envoyées ne sont pas valides',
          issues: [{ path: ['email'], code: 'invalid_format', message: 'doit être une adresse e-mail' }],
        },
      });
      expect(rest.body.results[2]).toMatchObject({ index: 2, ok: true, user: { email: fresh } });

      // tRPC, atomic: the valid item is not written either, and says so in French.
      const trpc = await call('POST', '/trpc/users.createMany', {
        body: { items: [{ email: admin.email }, { email: uniqueEmail('batch') }], atomic: true },
        lang: 'fr',
        headers: bearer(admin),
      });
      const [taken, aborted] = trpc.body.result.data.results;
      expect(taken.error).toEqual({ appCode: 'EMAIL_TAKEN', message: 'Un compte utilise déjà cette adresse e-mail' });
      expect(aborted.error).toEqual({
        appCode: 'BATCH_ABORTED',
        message: fr('Non enregistré : l’élément 0 a échoué et le lot est atomique'),
      });

      const english = await call('POST', '/api/users/batch', {
        body: { items: [{ email: admin.email }] },
        headers: bearer(admin),
      });
      expect(english.body.results[0].error).toEqual({
        appCode: 'EMAIL_TAKEN',
        message: 'An account with this email already exists',
      });
    });
  });
});

describe('emails in the language of the account, else of the request', () => {
  let t: TestApp;
  let account: Account;
  beforeAll(async () => {
    t = await buildTestApp({ env: { PRODUCT_NAME: 'Acme' } });
  });
  afterAll(() => t.close());

  const setLocale = async (locale: unknown) => {
    const response = await t.app.inject({
      method: 'PATCH',
      url: '/api/users/me',
      headers: bearer(account),
      payload: { locale },
    });
    return response;
  };
  const forgot = (lang?: string) =>
    t.app.inject({
      method: 'POST',
      url: '/api/auth/password/forgot',
      payload: { email: account.email },
      headers: lang ? { 'accept-language': lang } : {},
    });
  async function lastEmail(to: string, template: string) {
    await t.settle();
    const email = t.mail.last(to, template);
    expect(email, `${template} to ${to}`).toBeDefined();
    return email as NonNullable<typeof email>;
  }

  it('registration with Accept-Language: fr sends the verification email in French (the account keeps no language)', async () => {
    const email = uniqueEmail('fr');
    const response = await t.app.inject({
      method: 'POST',
      url: '/api/auth/register',
      headers: { 'accept-language': 'fr' },
      payload: { email, password: 'Correct-horse-42', name: 'Ada' },
    });
    expect(response.statusCode).toBe(200);
    const body = response.json();
    account = { id: body.user.id, email, password: 'Correct-horse-42', ...body };
    expect(body.user.locale).toBeNull();
    const verify = await lastEmail(email, 'verify-email');
    expect(verify.subject).toBe('Confirmez votre adresse e-mail pour Acme');
    expect(verify.text).toContain('Bonjour Ada,');
    expect(verify.html).toContain('<html lang="fr"');
  });

  it('users.updateMe sets, shows and clears the account’s language; refuses one we do not ship', async () => {
    const set = await setLocale('fr');
    expect(set.statusCode).toBe(200);
    expect(set.json().locale).toBe('fr');
    const me = await t.app.inject({ method: 'GET', url: '/api/users/me', headers: bearer(account) });
    expect(me.json().locale).toBe('fr');

    const refused = await setLocale('de');
    expect(refused.statusCode).toBe(400);
    expect(refused.json()).toMatchObject({ appCode: 'VALIDATION_FAILED', issues: [{ path: ['locale'] }] });
    const trpc = await t.app.inject({
      method: 'POST',
      url: '/trpc/users.updateMe',
      headers: bearer(account),
      payload: { locale: 'fr-CA' },
    });
    expect(trpc.json().error.data).toMatchObject({ appCode: 'VALIDATION_FAILED', issues: [{ path: ['locale'] }] });
    expect((await t.app.inject({ method: 'GET', url: '/api/users/me', headers: bearer(account) })).json().locale).toBe(
      'fr',
    );

    const cleared = await setLocale(null);
    expect(cleared.json().locale).toBeNull();
    // Leaving it out changes nothing.
    await setLocale('en');
    const renamed = await t.app.inject({
      method: 'PATCH',
      url: '/api/users/me',
      headers: bearer(account),
      payload: { name: 'Ada L' },
    });
    expect(renamed.json()).toMatchObject({ name: 'Ada L', locale: 'en' });
  });

  it('an account in French gets French without asking (forgotPassword, no Accept-Language)', async () => {
    await setLocale('fr');
    expect((await forgot()).statusCode).toBe(200);
    const email = await lastEmail(account.email, 'reset-password');
    expect(email.subject).toBe('Réinitialisez votre mot de passe Acme');
    expect(email.html).toContain('<html lang="fr"');
    // Even when the request asks for English: the account's language wins.
    await forgot('en');
    expect((await lastEmail(account.email, 'reset-password')).subject).toBe('Réinitialisez votre mot de passe Acme');
  });

  it('an account without a language gets the request’s (French), else English', async () => {
    await setLocale(null);
    await forgot('fr-CA, en;q=0.5');
    expect((await lastEmail(account.email, 'reset-password')).subject).toBe('Réinitialisez votre mot de passe Acme');
    await forgot();
    expect((await lastEmail(account.email, 'reset-password')).subject).toBe('Reset your Acme password');
  });

  it('an account in English gets English, even asked in French', async () => {
    await setLocale('en');
    await forgot('fr');
    const email = await lastEmail(account.email, 'reset-password');
    expect(email.subject).toBe('Reset your Acme password');
    expect(email.html).toContain('<html lang="en"');
  });

  it('resendVerification and the admin test email follow the account’s language', async () => {
    await setLocale('fr');
    const resend = await t.app.inject({ method: 'POST', url: '/api/auth/email/resend', headers: bearer(account) });
    expect(resend.statusCode).toBe(200);
    expect((await lastEmail(account.email, 'verify-email')).subject).toBe('Confirmez votre adresse e-mail pour Acme');

    await grantRole(t.services.db, account.id, 'admin');
    const test = await t.app.inject({
      method: 'POST',
      url: '/api/admin/test-email',
      headers: { ...bearer(account), 'accept-language': 'en' },
      payload: {},
    });
    expect(test.statusCode).toBe(200);
    expect((await lastEmail(account.email, 'test-email')).subject).toBe('E-mail de test envoyé par Acme');
    await setLocale(null);
    await t.app.inject({
      method: 'POST',
      url: '/api/admin/test-email',
      headers: { ...bearer(account), 'accept-language': 'fr' },
      payload: {},
    });
    expect((await lastEmail(account.email, 'test-email')).subject).toBe('E-mail de test envoyé par Acme');
    await t.app.inject({ method: 'POST', url: '/api/admin/test-email', headers: bearer(account), payload: {} });
    expect((await lastEmail(account.email, 'test-email')).subject).toBe('Test email from Acme');
  });

  it('one-time codes: the code and the welcome email in the request’s language; an account’s own wins', async () => {
    const email = uniqueEmail('otp');
    const french = { 'accept-language': 'fr' };
    const requested = await t.app.inject({
      method: 'POST',
      url: '/api/auth/otp/request',
      headers: french,
      payload: { email },
    });
    expect(requested.statusCode).toBe(200);
    const codeEmail = await lastEmail(email, 'one-time-code');
    expect(codeEmail.subject).toMatch(/^\d{6} est votre code Acme$/);
    const code = codeEmail.subject.slice(0, 6);
    const verified = await t.app.inject({
      method: 'POST',
      url: '/api/auth/otp/verify',
      headers: french,
      payload: { email, code },
    });
    expect(verified.json()).toMatchObject({ created: true });
    expect((await lastEmail(email, 'welcome')).subject).toBe('Bienvenue sur Acme');

    await setLocale('fr');
    await t.app.inject({ method: 'POST', url: '/api/auth/otp/request', payload: { email: account.email } });
    expect((await lastEmail(account.email, 'one-time-code')).subject).toMatch(/^\d{6} est votre code Acme$/);
  });
});
