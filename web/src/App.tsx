import { lazy, Suspense, useEffect, useState } from 'react';
import { Ward } from './components/Ward';
import { ConnBanner, ConnIndicator } from './components/ConnIndicator';
import { Login } from './components/Login';
import { UserMenu } from './components/UserMenu';
import { AlarmBar } from './components/AlarmBar';
import { useSession } from './auth';
import { allowed } from './roles';

// the detail view (and uPlot) and the admin pages are separate chunks: the ward loads without them
const DeviceDetail = lazy(() => import('./components/DeviceDetail').then((m) => ({ default: m.DeviceDetail })));
const Admin = lazy(() => import('./components/Admin').then((m) => ({ default: m.Admin })));

export type AdminPage = 'users' | 'tokens' | 'audit';
type Route = { name: 'ward' } | { name: 'device'; id: string } | { name: 'admin'; page: AdminPage };

export function parseRoute(hash: string): Route {
  const m = /^#\/device\/([^/?#]+)/.exec(hash);
  if (m) {
    try { return { name: 'device', id: decodeURIComponent(m[1]) }; } catch { /* fall through */ }
  }
  const a = /^#\/admin(?:\/(users|tokens|audit))?\/?$/.exec(hash);
  if (a) return { name: 'admin', page: (a[1] as AdminPage | undefined) ?? 'users' };
  return { name: 'ward' };
}

const SUB = { ward: 'Ward overview', device: 'Device', admin: 'Administration' } as const;

export function App() {
  const s = useSession();
  const [route, setRoute] = useState<Route>(() => parseRoute(window.location.hash));
  useEffect(() => {
    const on = () => { setRoute(parseRoute(window.location.hash)); window.scrollTo(0, 0); };
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  if (s.phase === 'checking') return <p className="empty">Loading…</p>;
  if (s.phase !== 'authed') return <Login notice={s.notice} />;
  const may = allowed(s.role);
  return (
    <>
      <div className="top-wrap">
      <header className="top">
        <a className="brand" href="#/" aria-label="Vigil ward view"><span className="brand-mark" aria-hidden="true">◆</span> VIGIL</a>
        <span className="top-sub">{SUB[route.name]}</span>
        {may.admin && <a className={`nav${route.name === 'admin' ? ' on' : ''}`} href="#/admin/users" data-testid="nav-admin">Admin</a>}
        <ConnIndicator />
        <UserMenu />
      </header>
      <AlarmBar />
      </div>
      <ConnBanner />
      {route.name === 'ward' ? <Ward /> : route.name === 'device' ? (
        <Suspense fallback={<p className="empty">Loading…</p>}><DeviceDetail key={route.id} id={route.id} /></Suspense>
      ) : may.admin ? (
        <Suspense fallback={<p className="empty">Loading…</p>}><Admin page={route.page} /></Suspense>
      ) : (
        <p className="empty">This page is for administrators. <a href="#/">Back to the ward</a></p>
      )}
    </>
  );
}
