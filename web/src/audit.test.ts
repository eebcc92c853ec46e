import { describe, expect, it } from 'vitest';
import { auditQueryString, firstPage, nextPage, pageEntries, type AuditEntry } from './audit';
import { passwordProblem, usernameProblem } from './accounts';

const e = (t: string, action = 'login', user = 'alice'): AuditEntry => ({ t, user, address: '127.0.0.1', action, target: null, outcome: 'ok', detail: null });

describe('audit query', () => {
  it('builds the query, omitting what is not set, clamping the limit', () => {
    expect(auditQueryString({ limit: 50 })).toBe('limit=50');
    expect(auditQueryString({ user: ' bob ', from: 1000.7, to: 2000, limit: 5000 })).toBe('from=1000&to=2000&user=bob&limit=1000');
    expect(auditQueryString({ user: 'a b&c', limit: 0 })).toBe('user=a+b%26c&limit=1');
  });
  it('first page: local inputs to epoch ms, "to" covers its whole minute', () => {
    const q = firstPage('', '2030-01-01T10:00', '2030-01-01T10:15', 20);
    expect(q.user).toBeUndefined();
    expect(q.from).toBe(new Date(2030, 0, 1, 10, 0).getTime());
    expect(q.to).toBe(new Date(2030, 0, 1, 10, 15).getTime() + 59_999);
    expect(q.limit).toBe(20);
    expect(firstPage('x', '', 'nonsense').to).toBeUndefined();
  });
  it('pages backwards with to = the oldest shown, dropping boundary entries already seen', () => {
    const page1 = [e('2030-01-01T00:00:05Z'), e('2030-01-01T00:00:04Z'), e('2030-01-01T00:00:03Z', 'logout'), e('2030-01-01T00:00:03Z')];
    const q1 = { limit: 4 };
    const q2 = nextPage(q1, 4, page1, 4)!;
    expect(q2.to).toBe(Date.parse('2030-01-01T00:00:03Z'));
    expect(q2.limit).toBe(6); // 4 new + the 2 boundary entries the server returns again
    // an inclusive server answers with the boundary again: it is dropped
    const ans = [e('2030-01-01T00:00:03Z', 'logout'), e('2030-01-01T00:00:03Z'), e('2030-01-01T00:00:03Z', 'user_add'), e('2030-01-01T00:00:02Z'), e('2030-01-01T00:00:01Z')];
    const page2 = pageEntries(q2, ans, 4);
    expect(page2.map((x) => x.action)).toEqual(['user_add', 'login', 'login']);
    // fewer than asked for: the end
    expect(nextPage(q2, ans.length, page2, 4)).toBeNull();
  });
  it('an exclusive server loses nothing either', () => {
    const page1 = [e('2030-01-01T00:00:05Z'), e('2030-01-01T00:00:03Z')];
    const q2 = nextPage({ limit: 2 }, 2, page1, 2)!;
    const ans = [e('2030-01-01T00:00:02Z'), e('2030-01-01T00:00:01Z'), e('2030-01-01T00:00:00Z')];
    expect(pageEntries(q2, ans, 2).map((x) => x.t)).toEqual(['2030-01-01T00:00:02Z', '2030-01-01T00:00:01Z']);
  });
  it('keeps the filter while paging; steps over a full page within one millisecond', () => {
    const same = Array.from({ length: 1000 }, () => e('2030-01-01T00:00:00.000Z'));
    const q = nextPage({ user: 'bob', limit: 1000 }, 1000, same, 1000)!;
    expect(q.user).toBe('bob');
    expect(q.to).toBe(Date.parse('2030-01-01T00:00:00Z') - 1);
    expect(q.seen).toBeUndefined();
    expect(nextPage({ limit: 2 }, 2, [], 2)).toBeNull();
  });
});

describe('account checks', () => {
  it('usernames as in the contract', () => {
    expect(usernameProblem('alice.b@ward-3_x')).toBeNull();
    expect(usernameProblem('')).not.toBeNull();
    expect(usernameProblem('.')).not.toBeNull();
    expect(usernameProblem('..')).not.toBeNull();
    expect(usernameProblem('a b')).not.toBeNull();
    expect(usernameProblem('x'.repeat(64))).toBeNull();
    expect(usernameProblem('x'.repeat(65))).not.toBeNull();
  });
  it('passwords: 8..1024 bytes, no newline', () => {
    expect(passwordProblem('12345678')).toBeNull();
    expect(passwordProblem('1234567')).not.toBeNull();
    expect(passwordProblem('12345678\n')).not.toBeNull();
    expect(passwordProblem('é'.repeat(512))).toBeNull();     // 1024 bytes
    expect(passwordProblem('é'.repeat(513))).not.toBeNull(); // 1026 bytes
  });
});
