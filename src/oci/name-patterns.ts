/**
 * @module Patterns over repository names and tags, as docker_auth's ACLs, enlil's quotas and
 * retention policies write them: a glob (`*` and `?` never cross `/`) or an anchored regex written
 * `/…/`. Here, beside the name grammar, so that auth and the core share it without depending on
 * each other.
 */

/** Whether `p` is a regex (`/…/`) rather than a glob. */
export function isRegex(p: string): boolean {
  return p.length >= 2 && p.startsWith('/') && p.endsWith('/')
}

const compiled = new Map<string, RegExp>()
/** Whether `value` matches the whole pattern `p`. */
export function patternMatches(p: string, value: string): boolean {
  let re = compiled.get(p)
  if (!re) {
    re = isRegex(p) ? new RegExp(`^(?:${p.slice(1, -1)})$`) : globToRegExp(p)
    if (compiled.size > 10_000) compiled.clear()
    compiled.set(p, re)
  }
  return re.test(value)
}

function globToRegExp(glob: string): RegExp {
  let out = ''
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!
    if (c === '\\' && i + 1 < glob.length) out += `\\${glob[++i]}`
    else if (c === '*') out += '[^/]*'
    else if (c === '?') out += '[^/]'
    else out += c.replace(/[.+^${}()|[\]\\/]/g, '\\$&')
  }
  return new RegExp(`^${out}$`)
}
