import { describe, expect, it } from 'vitest';
import { allowed, atLeast, parseRole } from './roles';

describe('roles', () => {
  it('parses only the four roles', () => {
    expect(parseRole('viewer')).toBe('viewer');
    expect(parseRole('admin')).toBe('admin');
    expect(parseRole('Admin')).toBeNull();
    expect(parseRole('root')).toBeNull();
    expect(parseRole(undefined)).toBeNull();
  });
  it('orders roles, each including the ones below', () => {
    expect(atLeast('admin', 'technician')).toBe(true);
    expect(atLeast('technician', 'technician')).toBe(true);
    expect(atLeast('clinician', 'technician')).toBe(false);
    expect(atLeast(null, 'viewer')).toBe(false);
  });
  it('viewer: no command or config controls', () => {
    const a = allowed('viewer');
    expect(a.commands).toBe(false);
    expect(a.config).toBe(false);
    expect(a.admin).toBe(false);
    for (const c of ['ping', 'identify', 'reboot', 'resend', 'set_interval']) expect(a.command(c)).toBe(false);
  });
  it('clinician: ping and identify only', () => {
    const a = allowed('clinician');
    expect(a.commands).toBe(true);
    expect(a.config).toBe(false);
    expect(a.command('ping')).toBe(true);
    expect(a.command('identify')).toBe(true);
    expect(a.command('reboot')).toBe(false);
    expect(a.command('resend')).toBe(false);
  });
  it('technician and admin: everything; only admin administers', () => {
    for (const r of ['technician', 'admin'] as const) {
      const a = allowed(r);
      expect(a.config).toBe(true);
      expect(a.command('reboot')).toBe(true);
      expect(a.command('resend')).toBe(true);
      expect(a.admin).toBe(r === 'admin');
    }
  });
  it('no role: nothing', () => {
    const a = allowed(null);
    expect(a.commands || a.config || a.admin || a.command('ping')).toBe(false);
  });
});
