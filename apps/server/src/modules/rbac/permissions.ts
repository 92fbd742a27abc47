/**
 * Every permission the code knows, with what it allows. A procedure names the one it
 * needs (`requirePermission('users:write')`); roles grant them; `admin` holds them all,
 * including ones added here later.
 */
export const PERMISSIONS = {
  'users:read': 'List and view any user',
  'users:write': 'Rename, disable and enable any user',
  'users:delete': 'Delete any user',
  'roles:read': 'List roles and permissions',
  'roles:write': 'Create, change and delete roles',
  'roles:assign': 'Give roles to users and take them away',
  'notes:read-any': "Read any user's notes",
  'files:read-any': "Download any user's files",
  'files:delete-any': "Delete any user's files",
  'auth:manage': 'Generate and revoke the app-store review sign-in code',
  'email:send-test': 'Send a test email to check delivery',
  'jobs:manage': 'See the background job queues, and retry or discard failed jobs',
} as const;

/** The name of a permission the code declares. */
export type Permission = keyof typeof PERMISSIONS;

export const ALL_PERMISSIONS = Object.keys(PERMISSIONS) as Permission[];

export const ADMIN_ROLE = 'admin';
export const DEFAULT_ROLE = 'user';

export function isPermission(value: string): value is Permission {
  return Object.hasOwn(PERMISSIONS, value);
}
