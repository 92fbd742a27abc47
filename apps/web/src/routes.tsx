/** Every page and who may see it. Adding a page: a component in pages/, a route here, a link in the nav. */
import type { Permission } from '@app/sdk';
import { type ReactNode, useState } from 'react';
import { createBrowserRouter, Navigate, NavLink, Outlet, useLocation } from 'react-router';
import { AdminRoles } from './pages/AdminRoles.tsx';
import { AdminUsers } from './pages/AdminUsers.tsx';
import { ForgotPassword } from './pages/ForgotPassword.tsx';
import { Notes } from './pages/Notes.tsx';
import { OAuthReturn } from './pages/OAuthReturn.tsx';
import { Profile } from './pages/Profile.tsx';
import { ResetPassword } from './pages/ResetPassword.tsx';
import { Sessions } from './pages/Sessions.tsx';
import { SignIn } from './pages/SignIn.tsx';
import { SignUp } from './pages/SignUp.tsx';
import { VerifyEmail } from './pages/VerifyEmail.tsx';
import { SessionProvider, useSession } from './session.tsx';
import { FormError } from './ui.tsx';

function Layout() {
  const { user, signOut, can } = useSession();
  const [signingOut, setSigningOut] = useState(false);
  const signOutHere = () => {
    setSigningOut(true);
    void signOut().finally(() => setSigningOut(false));
  };
  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header>
        <nav aria-label="Main">
          <strong>App</strong>
          {user ? (
            <>
              <NavLink to="/notes">Notes</NavLink>
              <NavLink to="/profile">Profile</NavLink>
              <NavLink to="/sessions">Sessions</NavLink>
              {can('users:read') && <NavLink to="/admin/users">Users</NavLink>}
              {can('roles:read') && <NavLink to="/admin/roles">Roles</NavLink>}
              <button type="button" className="link" onClick={signOutHere} disabled={signingOut}>
                {signingOut ? 'Signing out…' : 'Sign out'}
              </button>
            </>
          ) : (
            <>
              <NavLink to="/sign-in">Sign in</NavLink>
              <NavLink to="/sign-up">Sign up</NavLink>
            </>
          )}
        </nav>
      </header>
      <main id="main">
        <Outlet />
      </main>
    </>
  );
}

/** Signed-in pages: the sign-in page otherwise (and back here after signing in). */
function RequireUser({ children, permission }: { children: ReactNode; permission?: Permission }) {
  const { user, loading, can, unavailable, retry } = useSession();
  const location = useLocation();
  if (loading) return <p aria-busy="true">Loading…</p>;
  // Still signed in, but the account could not be read (offline, the server down): not the sign-in page.
  if (!user && unavailable) {
    return (
      <>
        <FormError problem={unavailable} />
        <button type="button" onClick={retry}>
          Try again
        </button>
      </>
    );
  }
  // Back to this page, query included, after signing in (whichever way).
  const from = `${location.pathname}${location.search}${location.hash}`;
  if (!user) return <Navigate to="/sign-in" replace state={{ from }} />;
  if (permission && !can(permission)) return <p role="alert">You do not have access to this page.</p>;
  return children;
}

function Root() {
  return (
    <SessionProvider>
      <Layout />
    </SessionProvider>
  );
}

export const router = createBrowserRouter([
  {
    element: <Root />,
    children: [
      { index: true, element: <Navigate to="/notes" replace /> },
      { path: 'sign-in', element: <SignIn /> },
      { path: 'sign-up', element: <SignUp /> },
      { path: 'forgot-password', element: <ForgotPassword /> },
      // The targets of the emails' links (APP_URL/verify-email?token=…, /reset-password?token=…).
      { path: 'verify-email', element: <VerifyEmail /> },
      { path: 'reset-password', element: <ResetPassword /> },
      { path: 'oauth/return', element: <OAuthReturn /> },
      {
        path: 'notes',
        element: (
          <RequireUser>
            <Notes />
          </RequireUser>
        ),
      },
      {
        path: 'profile',
        element: (
          <RequireUser>
            <Profile />
          </RequireUser>
        ),
      },
      {
        path: 'sessions',
        element: (
          <RequireUser>
            <Sessions />
          </RequireUser>
        ),
      },
      {
        path: 'admin/users',
        element: (
          <RequireUser permission="users:read">
            <AdminUsers />
          </RequireUser>
        ),
      },
      {
        path: 'admin/roles',
        element: (
          <RequireUser permission="roles:read">
            <AdminRoles />
          </RequireUser>
        ),
      },
      { path: '*', element: <p role="alert">No such page.</p> },
    ],
  },
]);
