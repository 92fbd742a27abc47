/**
 * The administrator's Users page: role checkboxes. Changes go one at a time; each must be
 * what was asked (this role given or taken), so a second tick neither misses the first nor
 * carries one the server refused. And the Roles page: a save carries only its own changes.
 */
import { registerAccount } from '@app/server/testing';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { adminSearchingFor, describeInBrowser, type Harness, holdMutations, startHarness } from './harness.ts';

describeInBrowser('the Users page', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness();
  });
  afterEach(() => h?.endTest());
  afterAll(() => h?.close());

  const rolesOf = async (userId: string) =>
    (
      await h.t.services.db
        .selectFrom('user_roles')
        .innerJoin('roles', 'roles.id', 'user_roles.role_id')
        .select('roles.name')
        .where('user_roles.user_id', '=', userId)
        .execute()
    )
      .map((role) => role.name)
      .sort();

  /** Two new roles, and an administrator's page showing a new member's row with their checkboxes. */
  async function memberRow(first: string, second: string) {
    await h.t.services.db
      .insertInto('roles')
      .values([
        { name: first, description: '' },
        { name: second, description: '' },
      ])
      .execute();
    const member = await registerAccount(h.t.app);
    const page = await adminSearchingFor(h, member.email);
    const row = page.getByRole('row').filter({ hasText: member.email });
    const checkbox = (role: string) => row.getByRole('checkbox', { name: role, exact: true });
    await checkbox(first).waitFor();
    expect(await rolesOf(member.id)).toEqual(['user']);
    return { member, page, checkbox };
  }

  it('keeps both roles ticked in quick succession', async () => {
    const { member, page, checkbox } = await memberRow('editor', 'reviewer');
    const editor = checkbox('editor');
    const reviewer = checkbox('reviewer');

    // The second tick comes while the first change is still on its way.
    const change = await holdMutations(page);
    await editor.click();
    await change.arrived;
    const secondTick = reviewer.click();
    await page.waitForTimeout(500);
    change.release();
    await secondTick;
    await change.stop();

    await expect.poll(() => rolesOf(member.id)).toEqual(['editor', 'reviewer', 'user']);
    await expect.poll(() => editor.isChecked()).toBe(true);
    await expect.poll(() => reviewer.isChecked()).toBe(true);
    expect(await page.getByRole('alert').count()).toBe(0);
  });

  it('does not carry a refused role change into the next one, and says why it was refused', async () => {
    const { member, page, checkbox } = await memberRow('auditor', 'translator');
    const auditor = checkbox('auditor');
    const translator = checkbox('translator');

    // The second tick comes while the first is on its way; meanwhile another administrator
    // deletes the first role, so the server refuses the first change.
    const changes = await holdMutations(page);
    await auditor.click();
    await changes.arrived;
    const secondTick = translator.click();
    await page.waitForTimeout(500);
    await h.t.services.db.deleteFrom('roles').where('name', '=', 'auditor').execute();
    changes.release();
    await secondTick;
    await changes.stop();

    // The second change is made as asked, without the refused one.
    await expect.poll(() => rolesOf(member.id)).toEqual(['translator', 'user']);
    await expect.poll(() => translator.isChecked()).toBe(true);
    await expect.poll(() => auditor.isChecked()).toBe(false);
    const refusal = page.getByRole('alert');
    await refusal.waitFor();
    expect(await refusal.getAttribute('data-app-code')).toBe('NOT_FOUND');
  });
  it('saves on the Roles page only the boxes changed there: another administrator’s change meanwhile stays', async () => {
    const name = `editor-${Date.now()}`;
    const role = await h.t.services.db
      .insertInto('roles')
      .values({ name, description: '' })
      .returning('id')
      .executeTakeFirstOrThrow();
    await h.t.services.db
      .insertInto('role_permissions')
      .values([
        { role_id: role.id, permission: 'users:read' },
        { role_id: role.id, permission: 'users:delete' },
      ])
      .execute();
    const permissionsOf = async () =>
      (
        await h.t.services.db
          .selectFrom('role_permissions')
          .select('permission')
          .where('role_id', '=', role.id)
          .orderBy('permission')
          .execute()
      ).map((row) => row.permission);
    const page = await adminSearchingFor(h, 'nobody@example.com');
    await page.getByRole('link', { name: 'Roles' }).click();
    const form = page.getByRole('form', { name });
    const box = (permission: string) => form.getByRole('checkbox', { name: permission });
    await box('users:delete').waitFor();
    expect(await box('users:delete').isChecked()).toBe(true);
    // Cleared and ticked again here: no change of this page's.
    await box('users:delete').uncheck();
    await box('users:delete').check();

    // Another administrator takes users:delete away while this page is open.
    await h.t.services.db
      .deleteFrom('role_permissions')
      .where('role_id', '=', role.id)
      .where('permission', '=', 'users:delete')
      .execute();
    await box('notes:read-any').check();
    await form.getByRole('button', { name: `Save ${name}` }).click();
    await form.getByText('Saved.').waitFor();
    // Before: the page sent the whole list it had loaded, and gave users:delete back.
    expect(await permissionsOf()).toEqual(['notes:read-any', 'users:read']);
    expect(await box('users:delete').isChecked()).toBe(false);
    expect(await box('notes:read-any').isChecked()).toBe(true);
  });
});
