import { useEffect, useRef, useState } from 'react';
import { login } from '../auth';
import { NOTICE_TEXT, type Notice } from '../session';

/** Shown whenever there is no session; the hash route is kept, so a login returns to it. */
export function Login({ notice }: { notice: Notice }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const userRef = useRef<HTMLInputElement>(null);
  useEffect(() => { document.title = 'Log in — Vigil'; userRef.current?.focus(); return () => { document.title = 'Vigil'; }; }, []);

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    if (!username || !password) { setError('Enter your username and password.'); return; }
    setBusy(true);
    setError(null);
    const err = await login(username, password);
    // on success this component unmounts: nothing more to set
    if (err) { setBusy(false); setError(err); setPassword(''); }
  }

  return (
    <div className="login-wrap">
      <form className="panel login" onSubmit={submit} aria-labelledby="login-h" data-testid="login">
        <h1 id="login-h" className="brand"><span className="brand-mark" aria-hidden="true">◆</span> VIGIL</h1>
        {notice && <p className={`notice notice-${notice}`} role="status" data-testid="login-notice">{NOTICE_TEXT[notice]}</p>}
        <label className="field">
          <span>Username</span>
          <input ref={userRef} name="username" autoComplete="username" value={username} onChange={(e) => setUsername(e.target.value)}
            data-testid="login-user" required />
        </label>
        <label className="field">
          <span>Password</span>
          <input name="password" type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)}
            data-testid="login-password" required />
        </label>
        {error && <p className="form-error" role="alert" data-testid="login-error">{error}</p>}
        <button type="submit" className="primary" disabled={busy} data-testid="login-submit">{busy ? 'Logging in…' : 'Log in'}</button>
      </form>
    </div>
  );
}
