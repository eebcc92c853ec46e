import { useEffect, useRef, useState } from 'react';
import { clock, store } from '../store';
import { computeWard, sameIds, type Filter, type SortKey, type WardList } from '../ward';
import { Tile } from './Tile';

// Ward query survives navigation to a device and back.
const saved = { sort: 'severity' as SortKey, filter: 'all' as Filter, search: '' };

const RESORT_MS = 1000;

function useWardList(sort: SortKey, filter: Filter, search: string): WardList {
  const [list, setList] = useState<WardList>(() => computeWard(store.devices.values(), { sort, filter, search }, clock.now()));
  const ref = useRef(list);
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | null = null;
    let lastRun = 0;
    const run = () => {
      timer = null;
      lastRun = performance.now();
      const next = computeWard(store.devices.values(), { sort, filter, search }, Date.now());
      const prev = ref.current;
      const c = next.counts, p = prev.counts;
      if (sameIds(next.ids, prev.ids) && c.total === p.total && c.alarm === p.alarm && c.technical === p.technical && c.ok === p.ok) return;
      ref.current = next;
      setList(next);
    };
    // re-sorting on every reading would make tiles jump around: at most once a second,
    // immediately when devices appear or disappear
    let mv = store.membershipVersion;
    const schedule = () => {
      if (store.membershipVersion !== mv) { mv = store.membershipVersion; if (timer) clearTimeout(timer); run(); return; }
      if (timer) return;
      timer = setTimeout(run, Math.max(0, RESORT_MS - (performance.now() - lastRun)));
    };
    run();
    const a = store.subscribeAny(schedule);
    const b = clock.subscribe(schedule);
    return () => { a(); b(); if (timer) clearTimeout(timer); };
  }, [sort, filter, search]);
  return list;
}

export function Ward() {
  const [sort, setSort] = useState<SortKey>(saved.sort);
  const [filter, setFilter] = useState<Filter>(saved.filter);
  const [search, setSearch] = useState(saved.search);
  useEffect(() => { saved.sort = sort; saved.filter = filter; saved.search = search; }, [sort, filter, search]);
  const { ids, counts } = useWardList(sort, filter, search);

  // Announce a change in the number of clinical alarms (not every reading).
  const [announce, setAnnounce] = useState('');
  const prevAlarm = useRef(counts.alarm);
  useEffect(() => {
    if (counts.alarm !== prevAlarm.current) {
      setAnnounce(counts.alarm ? `${counts.alarm} patient${counts.alarm > 1 ? 's' : ''} with a raised early-warning score` : 'No raised early-warning scores');
      prevAlarm.current = counts.alarm;
    }
  }, [counts.alarm]);

  return (
    <main className="ward">
      <div className="toolbar" role="search">
        <div className="summary" aria-label="Ward summary">
          <button className={`sum sum-alarm ${filter === 'alarm' ? 'on' : ''}`} onClick={() => setFilter(filter === 'alarm' ? 'all' : 'alarm')} aria-pressed={filter === 'alarm'}>
            <b>{counts.alarm}</b> alarm
          </button>
          <button className={`sum sum-tech ${filter === 'technical' ? 'on' : ''}`} onClick={() => setFilter(filter === 'technical' ? 'all' : 'technical')} aria-pressed={filter === 'technical'}>
            <b>{counts.technical}</b> technical
          </button>
          <span className="sum sum-ok"><b>{counts.ok}</b> ok</span>
          <span className="sum sum-total"><b>{counts.total}</b> devices</span>
        </div>
        <label className="field">
          <span>Search</span>
          <input type="search" placeholder="device id" value={search} onChange={(e) => setSearch(e.target.value)} data-testid="search" />
        </label>
        <label className="field">
          <span>Show</span>
          <select value={filter} onChange={(e) => setFilter(e.target.value as Filter)} data-testid="filter">
            <option value="all">All</option>
            <option value="alarm">Clinical alarms</option>
            <option value="technical">Technical alarms</option>
            <option value="online">Online</option>
            <option value="nosignal">No signal</option>
            <option value="stale">Stale</option>
            <option value="offline">Offline</option>
          </select>
        </label>
        <label className="field">
          <span>Sort</span>
          <select value={sort} onChange={(e) => setSort(e.target.value as SortKey)} data-testid="sort">
            <option value="severity">Worst first</option>
            <option value="id">Device id</option>
          </select>
        </label>
      </div>
      <div className="sr-only" aria-live="polite">{announce}</div>
      {ids.length === 0 ? (
        <p className="empty">{counts.total === 0 ? 'No devices yet. Waiting for data…' : 'No device matches.'}</p>
      ) : (
        <div className="grid" data-testid="grid">
          {ids.map((id) => <Tile key={id} id={id} />)}
        </div>
      )}
    </main>
  );
}
