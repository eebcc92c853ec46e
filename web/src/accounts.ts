// Client-side checks for the admin forms, mirroring the contract, so a typo is
// caught before a round trip (the server checks again). Pure.

const NAME_RE = /^[A-Za-z0-9_.@-]{1,64}$/;

/** null if ok, else what is wrong. */
export function usernameProblem(name: string): string | null {
  if (!name) return 'Enter a username.';
  if (name === '.' || name === '..') return 'A username cannot be "." or "..".';
  if (!NAME_RE.test(name)) return 'Usernames are 1–64 letters, digits or _ . @ -';
  return null;
}

export function passwordProblem(pw: string): string | null {
  const bytes = new TextEncoder().encode(pw).length;
  if (bytes < 8) return 'Passwords need at least 8 characters.';
  if (bytes > 1024) return 'Passwords are at most 1024 bytes.';
  if (/[\0\n\r]/.test(pw)) return 'Passwords cannot contain line breaks.';
  return null;
}

export function tokenNameProblem(name: string): string | null {
  if (!name.trim()) return 'Name the token (what will use it).';
  if (name.length > 64) return 'Token names are at most 64 characters.';
  return null;
}
