import { useClock, useConnection } from '../hooks';
import { formatAge } from '../time';
import { connection } from '../ws';
import { store } from '../store';
import { resyncText } from '../gaps';

const LABEL = { connecting: 'Connecting', connected: 'Connected', reconnecting: 'Reconnecting', offline: 'Offline' } as const;
const ICON = { connecting: '◌', connected: '●', reconnecting: '↻', offline: '✕' } as const;

export function ConnIndicator() {
  const c = useConnection();
  const now = useClock();
  const age = Number.isFinite(c.lastMessageAt) ? `last message ${formatAge(now - c.lastMessageAt)} ago` : 'no message yet';
  const retry = c.state === 'reconnecting' || c.state === 'offline'
    ? ` · retry in ${Math.max(0, Math.ceil((c.nextRetryAt - now) / 1000))} s` : '';
  return (
    <div className={`conn conn-${c.state}`} data-testid="conn" data-state={c.state} role="status"
      title={resyncText(store.resync)} data-resyncs={store.resync.server} data-refilled={store.resync.refilled}>
      <span className="conn-dot" aria-hidden="true">{ICON[c.state]}</span>
      <span className="conn-label">{LABEL[c.state]}</span>
      <span className="conn-age">{age}{retry}</span>
      {(c.state === 'reconnecting' || c.state === 'offline') && (
        <button className="link" onClick={() => connection.retryNow()}>Retry now</button>
      )}
    </div>
  );
}

/** A full-width warning whenever the numbers on screen may be old. */
export function ConnBanner() {
  const c = useConnection();
  const now = useClock();
  if (c.state === 'connected' || (c.state === 'connecting' && !Number.isFinite(c.disconnectedAt))) return null;
  const since = Number.isFinite(c.disconnectedAt) ? ` for ${formatAge(now - c.disconnectedAt)}` : '';
  return (
    <div className="banner" role="alert">
      Connection to the server lost{since}. Values shown are not live; devices turn stale as time passes.
    </div>
  );
}
