/**
 * @module Authorization: ordered ACL rules, first match wins, in the shape of cesanta/docker_auth's
 * (`match: {account, name, type, service, labels}`, `actions`), so its configs carry over as written.
 * Patterns are globs (`*` and `?` never cross `/`) or anchored regexes written `/…/`; `${account}`,
 * `${name}`, `${type}`, `${service}` and `${labels:<key>}` are replaced before matching (a label with
 * several values matches if any of them does).
 */
import { z } from 'zod'
import type { Access, Action } from './authorizer.js'
import { isRegex, patternMatches } from '../oci/name-patterns.js'

const pattern = z.string()
export const aclRuleSchema = z.strictObject({
  match: z.strictObject({
    account: pattern.optional(),
    name: pattern.optional(),
    type: pattern.optional(),
    service: pattern.optional(),
    ip: pattern.optional(),
    labels: z.record(z.string(), pattern).optional(),
  }).prefault({}),
  actions: z.array(z.enum(['pull', 'push', 'delete', '*'])),
  comment: z.string().optional(),
  /** The rule applies to authenticated accounts only. */
  require_account: z.boolean().optional(),
})
export const aclSchema = z.array(aclRuleSchema)
export type AclRule = z.output<typeof aclRuleSchema>

export interface Principal {
  /** '' for anonymous. */
  account: string
  labels?: Record<string, string[]>
  service?: string
  ip?: string
}

/** The actions `rules` grant `who` on one resource: those of the first matching rule, within what was asked. */
export function allowedActions(rules: readonly AclRule[], who: Principal, wanted: Access): Action[] {
  for (const rule of rules) {
    if (rule.require_account && !who.account) continue
    if (!matches(rule, who, wanted)) continue
    if (rule.actions.includes('*')) return wanted.actions
    return wanted.actions.filter((a) => a !== '*' && rule.actions.includes(a))
  }
  return []
}

/** Whether `who` may pull repository `name` (a mount without `from` looks for one it can read). */
export function mayPullRepository(rules: readonly AclRule[], who: Principal, name: string): boolean {
  return allowedActions(rules, who, { type: 'repository', name, actions: ['pull'] }).length > 0
}

/**
 * Whether any rule could grant `who` something, whatever the resource: false once an account has
 * lost all access (its refresh tokens stop working). Rules that grant nothing are not counted.
 */
export function mayHaveAccess(rules: readonly AclRule[], who: Principal): boolean {
  const anything: Access = { type: 'repository', name: '', actions: [] }
  return rules.some((rule) => rule.actions.length > 0 && !(rule.require_account && !who.account) && matchesAccount(rule, who, anything))
}

function matches(rule: AclRule, who: Principal, wanted: Access): boolean {
  const m = rule.match
  const fields: [string | undefined, string][] = [
    [m.name, wanted.name], [m.type, wanted.type], [m.service, who.service ?? ''], [m.ip, who.ip ?? ''],
  ]
  for (const [p, value] of fields) {
    if (p !== undefined && !expand(p, who, wanted).some((x) => patternMatches(x, value))) return false
  }
  return matchesAccount(rule, who, wanted)
}

/** The rule's `account` and `labels` matches, the part that depends on who asks alone. */
function matchesAccount(rule: AclRule, who: Principal, wanted: Access): boolean {
  const m = rule.match
  const labels = who.labels ?? {}
  if (m.account !== undefined && !expand(m.account, who, wanted).some((x) => patternMatches(x, who.account))) return false
  for (const [key, p] of Object.entries(m.labels ?? {})) {
    const values = labels[key] ?? []
    const candidates = expand(p, who, wanted)
    if (!values.some((v) => candidates.some((x) => patternMatches(x, v)))) return false
  }
  return true
}

/** Replaces placeholders; a multi-valued label yields one pattern per value (none: no pattern). */
function expand(p: string, who: Principal, wanted: Access): string[] {
  let results = [p]
  const simple: Record<string, string> = { account: who.account, name: wanted.name, type: wanted.type, service: who.service ?? '' }
  for (const [key, value] of Object.entries(simple)) results = results.map((r) => r.split(`\${${key}}`).join(escapeFor(r, value)))
  for (const match of p.matchAll(/\$\{labels:([^}]+)\}/g)) {
    const values = who.labels?.[match[1]!] ?? []
    results = results.flatMap((r) => values.map((v) => r.split(match[0]).join(escapeFor(r, v))))
  }
  return results
}

/** A value put into a pattern must match only itself. */
function escapeFor(p: string, value: string): string {
  return isRegex(p) ? value.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&') : value.replace(/[*?[\]\\]/g, '\\$&')
}
