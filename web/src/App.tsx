import { lazy, Suspense, useEffect, useState } from 'react';
import { Ward } from './components/Ward';
import { ConnBanner, ConnIndicator } from './components/ConnIndicator';

// the detail view (and uPlot) is a separate chunk: the ward loads without it
const DeviceDetail = lazy(() => import('./components/DeviceDetail').then((m) => ({ default: m.DeviceDetail })));

type Route = { name: 'ward' } | { name: 'device'; id: string };

export function parseRoute(hash: string): Route {
  const m = /^#\/device\/([^/?#]+)/.exec(hash);
  if (m) {
    try { return { name: 'device', id: decodeURIComponent(m[1]) }; } catch { /* fall through */ }
  }
  return { name: 'ward' };
}

export function App() {
  const [route, setRoute] = useState<Route>(() => parseRoute(window.location.hash));
  useEffect(() => {
    const on = () => { setRoute(parseRoute(window.location.hash)); window.scrollTo(0, 0); };
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return (
    <>
      <header className="top">
        <a className="brand" href="#/" aria-label="Vigil ward view"><span className="brand-mark" aria-hidden="true">◆</span> VIGIL</a>
        <span className="top-sub">{route.name === 'ward' ? 'Ward overview' : 'Device'}</span>
        <ConnIndicator />
      </header>
      <ConnBanner />
      {route.name === 'ward' ? <Ward /> : (
        <Suspense fallback={<p className="empty">Loading…</p>}><DeviceDetail key={route.id} id={route.id} /></Suspense>
      )}
    </>
  );
}
