import { createRoot } from 'react-dom/client';
import { App } from './App';
import { connection } from './ws';
import { store } from './store';
import { checkSession, session } from './auth';
import './styles.css';

const params = new URLSearchParams(window.location.search);
const synthetic = Number(params.get('synthetic') || 0);
if (synthetic > 0) {
  // page-only load test: devices generated in the page, no server (separate chunk), no login
  session.dispatch({ type: 'login', body: { user: 'synthetic', role: 'viewer', csrf: '-' } });
  import('./synthetic').then((m) => m.startSynthetic(synthetic, Number(params.get('hz') || 1)));
} else {
  // the live stream runs only while logged in; a logout or an expiry ends it and forgets the ward
  let live = false;
  const follow = () => {
    const authed = session.get().phase === 'authed';
    if (authed === live) return;
    live = authed;
    if (authed) connection.start();
    else { connection.stop(); store.enqueue({ type: 'snapshot', devices: [] }); }
  };
  session.subscribe(follow);
  void checkSession();
  // ?perf=1: expose the store's counters to the live load test (e2e/perf-live.mjs)
  if (params.get('perf')) (window as unknown as { __vigilStore: typeof store }).__vigilStore = store;
}

createRoot(document.getElementById('root')!).render(<App />);
