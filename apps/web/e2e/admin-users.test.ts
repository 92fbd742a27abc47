/**
 * The administrator's Users page: role checkboxes. The server replaces a user's roles with
 * the list sent, so a second tick must not be built from a list that misses the first.
 */
import { registerAccount } from '@app/server/testing';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { adminSearchingFor, describeInBrowser, type Harness, holdCall, startHarness } from './harness.ts';

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

  it('keeps both roles ticked in quick succession', async () => {
    await h.t.services.db
      .insertInto('roles')
      .values([
        { name: 'editor', description: '' },
        { name: 'reviewer', description: '' },
      ])
      .execute();
    const member = await registerAccount(h.t.app);
    const page = await adminSearchingFor(h, member.email);
    const row = page.getByRole('row').filter({ hasText: member.email });
    const editor = row.getByRole('checkbox', { name: 'editor', exact: true });
    const reviewer = row.getByRole('checkbox', { name: 'reviewer', exact: true });
    await editor.waitFor();
    expect(await rolesOf(member.id)).toEqual(['user']);

    // The second tick comes while the first change is still on its way.
    const change = await holdCall(page, 'users.updateMany');
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
});
