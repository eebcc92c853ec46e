import { createRoot } from 'react-dom/client';
import { App } from './App';
import { connection } from './ws';
import './styles.css';

const params = new URLSearchParams(window.location.search);
const synthetic = Number(params.get('synthetic') || 0);
if (synthetic > 0) {
  // page-only load test: devices generated in the page, no server (separate chunk)
  import('./synthetic').then((m) => m.startSynthetic(synthetic, Number(params.get('hz') || 1)));
} else {
  connection.start();
}

createRoot(document.getElementById('root')!).render(<App />);
