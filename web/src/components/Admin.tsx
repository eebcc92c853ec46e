import { useCallback, useEffect, useState } from 'react';
import {
  addToken, addUser, deleteToken, deleteUser, getAudit, listTokens, listUsers, updateUser,
  type NewToken, type TokenRow, type UserRow,
} from '../api';
import { useSession } from '../auth';
import { ROLES, ROLE_LABEL } from '../roles';
import { passwordProblem, tokenNameProblem, usernameProblem } from '../accounts';
import { AUDIT_PAGE, auditQueryString, firstPage, nextPage, pageEntries, type AuditEntry, type AuditQuery } from '../audit';
import { fmtTime } from '../format';
import type { AdminPage } from '../App';

const msg = (e: unknown) => (e instanceof Error ? e.message : String(e));

export function Admin({ page }: { page: AdminPage }) {
  useEffect(() => { document.title = 'Administration — Vigil'; return () => { document.title = 'Vigil'; }; }, []);
  return (
    <main className="admin">
      <nav className="tabs" aria-label="Administration">
        {(['users', 'tokens', 'audit'] as const).map((p) => (
          <a key={p} href={`#/admin/${p}`} aria-current={p === page ? 'page' : undefined} data-testid={`tab-${p}`}>
            {p === 'users' ? 'Users' : p === 'tokens' ? 'API tokens' : 'Audit trail'}
          </a>
        ))}
      </nav>
      {page === 'users' ? <Users /> : page === 'tokens' ? <Tokens /> : <Audit />}
    </main>
  );
}

function RoleSelect({ value, onChange, testId, disabled }: { value: string; onChange: (r: string) => void; testId?: string; disabled?: boolean }) {
  return (
    <select value={value} onChange={(e) => onChange(e.target.value)} data-testid={testId} disabled={disabled}>
      {ROLES.map((r) => <option key={r} value={r}>{ROLE_LABEL[r]}</option>)}
    </select>
  );
}

/** A list loaded from the server, reloadable; errors kept for display. */
function useList<T>(load: () => Promise<T[]>) {
  const [rows, setRows] = useState<T[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const reload = useCallback(() => {
    load().then((r) => { setRows(r); setError(null); }, (e) => setError(msg(e)));
  }, [load]);
  useEffect(reload, [reload]);
  return { rows, error, reload };
}

function Users() {
  const me = useSession().user;
  const { rows, error, reload } = useList<UserRow>(listUsers);
  const [name, setName] = useState('');
  const [role, setRole] = useState('viewer');
  const [pw, setPw] = useState('');
  const [status, setStatus] = useState<{ ok: boolean; text: string } | null>(null);
  const [resetFor, setResetFor] = useState<string | null>(null);
  const [resetPw, setResetPw] = useState('');

  const act = async (what: string, f: () => Promise<unknown>) => {
    try { await f(); setStatus({ ok: true, text: what }); reload(); return true; } catch (e) { setStatus({ ok: false, text: msg(e) }); return false; }
  };
  const addProblem = usernameProblem(name) ?? passwordProblem(pw);

  return (
    <section className="panel" aria-labelledby="users-h">
      <h2 id="users-h">Users</h2>
      <form className="row" onSubmit={async (e) => {
        e.preventDefault();
        if (addProblem) { setStatus({ ok: false, text: addProblem }); return; }
        if (await act(`Added ${name} (${role}).`, () => addUser(name, role, pw))) { setName(''); setPw(''); }
      }}>
        <label className="field"><span>Username</span><input value={name} onChange={(e) => setName(e.target.value)} autoComplete="off" data-testid="user-name" /></label>
        <label className="field"><span>Role</span><RoleSelect value={role} onChange={setRole} testId="user-role" /></label>
        <label className="field"><span>Password (8+ characters)</span><input type="password" value={pw} onChange={(e) => setPw(e.target.value)} autoComplete="new-password" data-testid="user-password" /></label>
        <button type="submit" data-testid="user-add">Add user</button>
      </form>
      {status && <p className={status.ok ? 'form-ok' : 'form-error'} role={status.ok ? 'status' : 'alert'} data-testid="users-status">{status.text}</p>}
      {error && <p className="form-error" role="alert">Could not load the users: {error}</p>}
      {rows && (
        <table className="table" data-testid="users">
          <thead><tr><th>Username</th><th>Role</th><th>Created</th><th /></tr></thead>
          <tbody>
            {rows.map((u) => (
              <tr key={u.username} data-user={u.username}>
                <td>{u.username}{u.username === me && <span className="muted"> (you)</span>}</td>
                <td>
                  <RoleSelect value={u.role} disabled={u.username === me}
                    onChange={(r) => { void act(`${u.username} is now ${r}.`, () => updateUser(u.username, { role: r })); }} />
                </td>
                <td>{fmtTime(u.created_at)}</td>
                <td className="actions">
                  {resetFor === u.username ? (
                    <form className="inline" onSubmit={async (e) => {
                      e.preventDefault();
                      const p = passwordProblem(resetPw);
                      if (p) { setStatus({ ok: false, text: p }); return; }
                      if (await act(`New password set for ${u.username}.`, () => updateUser(u.username, { password: resetPw }))) { setResetFor(null); setResetPw(''); }
                    }}>
                      <input type="password" aria-label={`New password for ${u.username}`} value={resetPw} onChange={(e) => setResetPw(e.target.value)} autoComplete="new-password" />
                      <button type="submit">Set</button>
                      <button type="button" className="link" onClick={() => { setResetFor(null); setResetPw(''); }}>Cancel</button>
                    </form>
                  ) : (
                    <button onClick={() => { setResetFor(u.username); setResetPw(''); }}>Reset password</button>
                  )}
                  <button className="danger" disabled={u.username === me} title={u.username === me ? 'You cannot delete your own account' : undefined}
                    onClick={() => {
                      if (window.confirm(`Delete user ${u.username}? Their sessions end now.`)) void act(`Deleted ${u.username}.`, () => deleteUser(u.username));
                    }}>Delete…</button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function Tokens() {
  const { rows, error, reload } = useList<TokenRow>(listTokens);
  const [name, setName] = useState('');
  const [role, setRole] = useState('viewer');
  const [fresh, setFresh] = useState<NewToken | null>(null);
  const [copied, setCopied] = useState(false);
  const [status, setStatus] = useState<string | null>(null);

  return (
    <section className="panel" aria-labelledby="tokens-h">
      <h2 id="tokens-h">API tokens</h2>
      <form className="row" onSubmit={async (e) => {
        e.preventDefault();
        const p = tokenNameProblem(name);
        if (p) { setStatus(p); return; }
        try { setFresh(await addToken(name.trim(), role)); setCopied(false); setStatus(null); setName(''); reload(); } catch (err) { setStatus(msg(err)); }
      }}>
        <label className="field"><span>Name</span><input value={name} onChange={(e) => setName(e.target.value)} autoComplete="off" data-testid="token-name" /></label>
        <label className="field"><span>Role</span><RoleSelect value={role} onChange={setRole} testId="token-role" /></label>
        <button type="submit" data-testid="token-add">Create token</button>
      </form>
      {status && <p className="form-error" role="alert">{status}</p>}
      {fresh && (
        <div className="secret" role="status" data-testid="token-new">
          <p><b>Token “{fresh.name}” ({fresh.role}).</b> Copy it now: it will not be shown again.</p>
          <div className="row">
            <code data-testid="token-value">{fresh.token}</code>
            <button onClick={async () => {
              try { await navigator.clipboard.writeText(fresh.token); setCopied(true); } catch { setStatus('Copy failed: select the token and copy it by hand.'); }
            }} data-testid="token-copy">{copied ? 'Copied' : 'Copy'}</button>
            <button className="link" onClick={() => setFresh(null)}>Done</button>
          </div>
        </div>
      )}
      {error && <p className="form-error" role="alert">Could not load the tokens: {error}</p>}
      {rows && (
        <table className="table" data-testid="tokens">
          <thead><tr><th>Name</th><th>Role</th><th>Created</th><th>Last used</th><th /></tr></thead>
          <tbody>
            {rows.map((t) => (
              <tr key={String(t.id)} data-token={t.name}>
                <td>{t.name}</td><td>{t.role}</td><td>{fmtTime(t.created_at)}</td><td>{t.last_used_at ? fmtTime(t.last_used_at) : 'never'}</td>
                <td className="actions">
                  <button className="danger" onClick={async () => {
                    if (!window.confirm(`Revoke token ${t.name}? Whatever uses it loses access now.`)) return;
                    try { await deleteToken(t.id); reload(); } catch (err) { setStatus(msg(err)); }
                  }}>Revoke…</button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {rows && !rows.length && <p className="muted">No tokens.</p>}
    </section>
  );
}

function Audit() {
  const [user, setUser] = useState('');
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const [q, setQ] = useState<AuditQuery>(() => firstPage('', '', ''));
  const [back, setBack] = useState<AuditQuery[]>([]);   // newer pages, for "Newer"
  const [res, setRes] = useState<{ shown: AuditEntry[]; answered: number } | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const ac = new AbortController();
    setError(null);
    getAudit(auditQueryString(q), ac.signal).then(
      (entries) => setRes({ shown: pageEntries(q, entries, AUDIT_PAGE), answered: entries.length }),
      (e) => { if (!ac.signal.aborted) setError(msg(e)); });
    return () => ac.abort();
  }, [q]);

  const older = res ? nextPage(q, res.answered, res.shown, AUDIT_PAGE) : null;
  return (
    <section className="panel" aria-labelledby="audit-h">
      <h2 id="audit-h">Audit trail</h2>
      <form className="row" onSubmit={(e) => { e.preventDefault(); setBack([]); setQ(firstPage(user, from, to)); }}>
        <label className="field"><span>User</span><input value={user} onChange={(e) => setUser(e.target.value)} data-testid="audit-user" /></label>
        <label className="field small"><span>From</span><input type="datetime-local" value={from} onChange={(e) => setFrom(e.target.value)} data-testid="audit-from" /></label>
        <label className="field small"><span>To</span><input type="datetime-local" value={to} onChange={(e) => setTo(e.target.value)} data-testid="audit-to" /></label>
        <button type="submit" data-testid="audit-apply">Filter</button>
        <span className="spacer" />
        <button type="button" disabled={!back.length} onClick={() => { setQ(back[back.length - 1]); setBack(back.slice(0, -1)); }}>← Newer</button>
        <button type="button" disabled={!older} onClick={() => { if (older) { setBack([...back, q]); setQ(older); } }} data-testid="audit-older">Older →</button>
      </form>
      {error && <p className="form-error" role="alert">Could not load the audit trail: {error}</p>}
      {res && (
        <table className="table" data-testid="audit">
          <thead><tr><th>Time</th><th>User</th><th>Address</th><th>Action</th><th>Target</th><th>Outcome</th><th>Detail</th></tr></thead>
          <tbody>
            {res.shown.map((e, i) => (
              <tr key={`${e.t}-${i}`} className={e.outcome && e.outcome !== 'ok' ? 'bad' : undefined}>
                <td>{fmtTime(e.t)}</td><td>{e.user ?? '—'}</td><td>{e.address ?? '—'}</td><td>{e.action}</td>
                <td>{e.target ?? ''}</td><td>{e.outcome ?? ''}</td><td>{e.detail ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {res && !res.shown.length && <p className="muted">No entries.</p>}
    </section>
  );
}
