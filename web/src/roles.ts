// Roles (lowest to highest; each includes the ones below) and what the UI may
// offer each one. The server enforces the same rules (403); the UI only hides
// what would be refused, so nobody is offered a button that cannot work.

export type Role = 'viewer' | 'clinician' | 'technician' | 'admin';

export const ROLES: readonly Role[] = ['viewer', 'clinician', 'technician', 'admin'];

export const ROLE_LABEL: Record<Role, string> = {
  viewer: 'Viewer', clinician: 'Clinician', technician: 'Technician', admin: 'Admin',
};

/** The role named by s, or null (an unknown role gets no rights at all). */
export function parseRole(s: unknown): Role | null {
  return typeof s === 'string' && (ROLES as readonly string[]).includes(s) ? (s as Role) : null;
}

export function atLeast(role: Role | null | undefined, min: Role): boolean {
  return role != null && ROLES.indexOf(role) >= ROLES.indexOf(min);
}

/** Commands a clinician may send; every other command needs a technician. */
export const CLINICIAN_COMMANDS: readonly string[] = ['ping', 'identify'];

export interface Allowed {
  commands: boolean;      // any command control at all
  config: boolean;        // PUT …/config
  admin: boolean;         // users, tokens, audit
  command(name: string): boolean;
}

export function allowed(role: Role | null | undefined): Allowed {
  const tech = atLeast(role, 'technician');
  const clin = atLeast(role, 'clinician');
  return {
    commands: clin,
    config: tech,
    admin: atLeast(role, 'admin'),
    command: (name) => tech || (clin && CLINICIAN_COMMANDS.includes(name)),
  };
}
