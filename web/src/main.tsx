import { createRoot } from 'react-dom/client';
import { App } from './App';
import { connection } from './ws';
import { store } from './store';
import './styles.css';

const params = new URLSearchParams(window.location.search);
const synthetic = Number(params.get('synthetic') || 0);
if (synthetic > 0) {
  // page-only load test: devices generated in the page, no server (separate chunk)
  import('./synthetic').then((m) => m.startSynthetic(synthetic, Number(params.get('hz') || 1)));
} else {
  connection.start();
  // ?perf=1: expose the store's counters to the live load test (e2e/perf-live.mjs)
  if (params.get('perf')) (window as unknown as { __vigilStore: typeof store }).__vigilStore = store;
}

createRoot(document.getElementById('root')!).render(<App />);
