import { useState } from 'react';
import { logout, useSession } from '../auth';
import { ROLE_LABEL } from '../roles';

export function UserMenu() {
  const s = useSession();
  const [busy, setBusy] = useState(false);
  if (s.phase !== 'authed' || !s.user || !s.role) return null;
  return (
    <div className="who">
      <span className="who-name" data-testid="who-user">{s.user}</span>
      <span className={`role role-${s.role}`} data-testid="who-role">{ROLE_LABEL[s.role]}</span>
      <button disabled={busy} data-testid="logout" onClick={async () => {
        setBusy(true);
        await logout();
        // the next login starts at the ward, whoever it is
        if (window.location.hash && window.location.hash !== '#/') window.location.hash = '#/';
      }}>Log out</button>
    </div>
  );
}
