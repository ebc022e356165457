import type { Session } from "./App.js";

// The service's own permissions, as API.md names them, with what they let a
// key do, for the Issue dialog.
export const SERVICE_PERMISSIONS: { name: string; what: string; operatorOnly?: boolean }[] = [
  { name: "api_keys:read", what: "see keys" },
  { name: "api_keys:manage", what: "issue, change, rotate and revoke keys" },
  { name: "api_keys:verify", what: "verify other keys (for services that check callers)" },
  { name: "workspaces:read", what: "see workspaces" },
  { name: "workspaces:manage", what: "create and change workspaces, and reach all of them" },
  { name: "profiles:read", what: "see people and profiles" },
  { name: "profiles:manage", what: "add, change, suspend and restore people" },
  { name: "audit:read", what: "read the audit log" },
  { name: "accounts:manage", what: "create and manage accounts", operatorOnly: true },
];

export function callerPermissions(s: Session): string[] {
  return s.who.apiKey?.spec?.permissions ?? s.who.profile?.spec?.permissions ?? [];
}

// holds reports whether a caller holding `held` may give `want`: `*`,
// `resource:*`, the permission itself, or manage for read.
export function holds(held: string[], want: string): boolean {
  const [res, verb] = want.split(":");
  return held.some((h) => {
    if (h === "*" || h === want) return true;
    const [hr, hv] = h.split(":");
    return hr === res && (hv === "*" || (hv === "manage" && verb === "read"));
  });
}

export function offeredPermissions(s: Session) {
  const held = callerPermissions(s);
  const operator = s.who.account?.spec?.operator ?? false;
  return SERVICE_PERMISSIONS.filter((p) => (!p.operatorOnly || operator) && holds(held, p.name));
}

// operatorOnly reports whether a permission names the accounts resource,
// which is effective only in the operator account (auth.OperatorOnly).
export function operatorOnly(p: string): boolean {
  return p.startsWith("accounts:");
}

// mayGive reports whether the caller may give a permission to a key (at
// Issue or by Update): only one it effectively holds itself.
export function mayGive(s: Session, p: string): boolean {
  const operator = s.who.account?.spec?.operator ?? false;
  return (operator || !operatorOnly(p)) && holds(callerPermissions(s), p);
}

// permissionsWithinReach is the permission half of the server's reach rule
// (auth.Authorizer.Change): the caller may change a key only when it holds
// every permission of the key. Permissions on accounts, which give a key
// outside the operator account nothing, are left out there. The other
// half, workspaces, needs the grants (KeyWorkspaces.tsx).
export function permissionsWithinReach(s: Session, target: string[]): boolean {
  const held = callerPermissions(s);
  const operator = s.who.account?.spec?.operator ?? false;
  return target.every((p) => (!operator && operatorOnly(p)) || holds(held, p));
}
