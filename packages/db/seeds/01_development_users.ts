import type { Db } from '../src/client.ts';
import { hashPassword } from '../src/password-hash.ts';

/** The development accounts of API.md. Idempotent: existing users keep their password. */
const USERS = [
  { email: 'admin@example.com', password: 'Adminpassword1', name: 'Admin', role: 'admin' },
  { email: 'user@example.com', password: 'Userpassword1', name: 'User', role: 'user' },
];

export async function seed(db: Db): Promise<void> {
  for (const user of USERS) {
    const byEmail = db.selectFrom('users').select('id').where('email', '=', user.email);
    const row =
      (await byEmail.executeTakeFirst()) ??
      (await db
        .insertInto('users')
        .values({
          email: user.email,
          name: user.name,
          password_hash: await hashPassword(user.password),
          email_verified_at: new Date(),
        })
        .onConflict((oc) => oc.column('email').doNothing())
        .returning('id')
        .executeTakeFirst()) ??
      // Inserted meanwhile by another process seeding the same fresh database (`pnpm dev`
      // and `pnpm worker` started together).
      (await byEmail.executeTakeFirstOrThrow());
    const roles = await db.selectFrom('roles').select('id').where('name', 'in', [user.role, 'user']).execute();
    await db
      .insertInto('user_roles')
      .values(roles.map((role) => ({ user_id: row.id, role_id: role.id })))
      .onConflict((oc) => oc.doNothing())
      .execute();
  }
}
