import type { Db } from '@app/db';
import type { FastifyInstance } from 'fastify';

export interface Account {
  id: string;
  email: string;
  password: string;
  accessToken: string;
  refreshToken: string;
}

let counter = 0;

/** A fresh address for each call, so tests never collide on EMAIL_TAKEN. */
export function uniqueEmail(prefix = 'user'): string {
  counter += 1;
  return `${prefix}-${process.pid}-${counter}-${Math.random().toString(36).slice(2, 8)}@example.com`;
}

/** Registers over REST and returns the account with its tokens. */
export async function registerAccount(
  app: FastifyInstance,
  overrides: { email?: string; password?: string; name?: string } = {},
): Promise<Account> {
  const email = overrides.email ?? uniqueEmail();
  const password = overrides.password ?? 'Correct-horse-42';
  const response = await app.inject({
    method: 'POST',
    url: '/api/auth/register',
    payload: { email, password, ...(overrides.name && { name: overrides.name }) },
  });
  if (response.statusCode !== 200) throw new Error(`register failed: ${response.statusCode} ${response.body}`);
  const body = response.json();
  return { id: body.user.id, email, password, accessToken: body.accessToken, refreshToken: body.refreshToken };
}

export async function login(
  app: FastifyInstance,
  email: string,
  password: string,
  headers: Record<string, string> = {},
) {
  return app.inject({ method: 'POST', url: '/api/auth/login', payload: { email, password }, headers });
}

export const bearer = (account: { accessToken: string }) => ({ authorization: `Bearer ${account.accessToken}` });

/** Gives the account a role by name, straight in the database (test set-up, not the API under test). */
export async function grantRole(db: Db, userId: string, roleName: string): Promise<void> {
  const role = await db.selectFrom('roles').select('id').where('name', '=', roleName).executeTakeFirstOrThrow();
  await db
    .insertInto('user_roles')
    .values({ user_id: userId, role_id: role.id })
    .onConflict((oc) => oc.doNothing())
    .execute();
}

/** An account holding the admin role. */
export async function registerAdmin(app: FastifyInstance, db: Db): Promise<Account> {
  const admin = await registerAccount(app, { email: uniqueEmail('admin') });
  await grantRole(db, admin.id, 'admin');
  return admin;
}
