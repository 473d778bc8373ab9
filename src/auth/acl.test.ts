/** The ACLs of the docker_auth setups people run today, as written in their configs, as tables. */
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { aclSchema, allowedActions, type Principal } from './acl.js'
import type { Action } from './authorizer.js'

const acl = aclSchema.parse(parse(`
- match: {account: "", name: "publicrepos/*"}
  actions: ["pull"]
  comment: "Public read-only access to publicrepos namespace"
- match:
    name: "publicrepos/*"
    labels:
      group: "first_user_group"
  actions: ["pull", "push"]
  require_account: true
- match: {account: "admin"}
  actions: ["*"]
  require_account: true
- match: {name: "\${labels:group}-shared/*"}
  actions: ["push", "pull"]
  require_account: true
- match: {account: "/.+/", name: "\${account}/*"}
  actions: ["*"]
  require_account: true
`))

const anonymous: Principal = { account: '' }
const alice: Principal = { account: 'alice', labels: { group: ['first_user_group', 'ops'] } }
const bob: Principal = { account: 'bob', labels: { group: ['devs'] } }
const admin: Principal = { account: 'admin' }
const ALL: Action[] = ['pull', 'push', 'delete']

const cases: [string, Principal, string, Action[]][] = [
  ['anonymous pulls publicrepos/*', anonymous, 'publicrepos/app', ['pull']],
  ['anonymous: nothing nested deeper (* does not cross /)', anonymous, 'publicrepos/a/b', []],
  ['anonymous: nothing elsewhere', anonymous, 'alice/app', []],
  ['group member pushes to publicrepos/*', alice, 'publicrepos/app', ['pull', 'push']],
  ['non-member: anonymous rule does not apply to accounts', bob, 'publicrepos/app', []],
  ['admin does everything', admin, 'anything/at/all', ALL],
  ['${labels:group}-shared/* for each group', alice, 'ops-shared/tool', ['pull', 'push']],
  ['... and not for groups one is not in', bob, 'ops-shared/tool', []],
  ['${account}/* is one\'s own namespace', bob, 'bob/app', ALL],
  ['... and not another\'s', bob, 'alice/app', []],
  ['placeholders are literal, not patterns', { account: 'b*' }, 'bob/app', []],
]

describe('docker_auth-style ACL (first match wins)', () => {
  it.each(cases)('%s', (_title, who, name, expected) => {
    expect(allowedActions(acl, who, { type: 'repository', name, actions: ALL })).toEqual(expected)
  })

  it('the catalog is registry:catalog:*', () => {
    const rules = aclSchema.parse([{ match: { type: 'registry', name: 'catalog' }, actions: ['*'], require_account: true }])
    expect(allowedActions(rules, admin, { type: 'registry', name: 'catalog', actions: ['*'] })).toEqual(['*'])
    expect(allowedActions(rules, anonymous, { type: 'registry', name: 'catalog', actions: ['*'] })).toEqual([])
  })

  it('the second example of the seeds: named users, anonymous pulls of public/*', () => {
    const rules = aclSchema.parse([
      { match: { account: 'tjarosik' }, actions: ['*'] },
      { match: { account: 'marcin' }, actions: ['*'] },
      { match: { account: '', name: 'public/*' }, actions: ['pull'] },
    ])
    expect(allowedActions(rules, { account: 'marcin' }, { type: 'repository', name: 'vm/macos', actions: ['pull', 'push'] })).toEqual(['pull', 'push'])
    expect(allowedActions(rules, anonymous, { type: 'repository', name: 'public/x', actions: ['pull', 'push'] })).toEqual(['pull'])
    expect(allowedActions(rules, { account: 'eve' }, { type: 'repository', name: 'public/x', actions: ['pull'] })).toEqual([])
  })

  it('matches the service and the client address too', () => {
    const rules = aclSchema.parse([{ match: { service: 'registry.example.com', ip: '10.0.*' }, actions: ['pull'] }])
    const wanted = { type: 'repository' as const, name: 'x/y', actions: ['pull' as const] }
    expect(allowedActions(rules, { account: 'a', service: 'registry.example.com', ip: '10.0.3' }, wanted)).toEqual(['pull'])
    expect(allowedActions(rules, { account: 'a', service: 'other', ip: '10.0.3' }, wanted)).toEqual([])
    expect(allowedActions(rules, { account: 'a', service: 'registry.example.com', ip: '192.168.1.1' }, wanted)).toEqual([])
  })
})
