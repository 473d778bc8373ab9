import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import bcrypt from 'bcryptjs'
import { afterAll, describe, expect, it } from 'vitest'
import { aclSchema, allowedActions } from './acl.js'
import { createAccounts, createAccountsFromText, parseAccounts } from './accounts.js'

const dir = mkdtempSync(join(tmpdir(), 'enlil-accounts-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe("docker_auth's users file", () => {
  const hash = bcrypt.hashSync('pw', 4).replace('$2b$', '$2y$')
  const yaml = `users:\n  "admin":\n    password: "${hash}"\n  "test":\n    password: "${hash}"\n    labels:\n      group: ["first_user_group", "ops"]\n  "solo":\n    password: "${hash}"\n    labels: { team: "blue" }\n`

  it('reads passwords and labels, a single label value as a list', () => {
    const accounts = parseAccounts(yaml, 'users.yml')
    expect([...accounts.keys()]).toEqual(['admin', 'test', 'solo'])
    expect(accounts.get('test')!.labels).toEqual({ group: ['first_user_group', 'ops'] })
    expect(accounts.get('solo')!.labels).toEqual({ team: ['blue'] })
    expect(accounts.get('admin')!.hash.startsWith('$2b$')).toBe(true)
  })

  it('refuses plain-text passwords, naming the user', () => {
    expect(() => parseAccounts('users:\n  bob:\n    password: hunter2\n', 'users.yml')).toThrow('users.yml: the password of "bob" is not a bcrypt hash')
  })

  it('gives the ACL its labels: ${labels:group}-shared/*', async () => {
    const file = join(dir, 'users.yml')
    writeFileSync(file, yaml)
    const accounts = createAccounts(file)
    const account = await accounts.fromBasic(`Basic ${Buffer.from('test:pw').toString('base64')}`)
    expect(account).toBe('test')
    const acl = aclSchema.parse([{ match: { name: '${labels:group}-shared/*' }, actions: ['push', 'pull'], require_account: true }])
    const who = { account: account!, labels: accounts.labels(account!) }
    expect(allowedActions(acl, who, { type: 'repository', name: 'ops-shared/tool', actions: ['pull', 'push'] })).toEqual(['pull', 'push'])
    expect(allowedActions(acl, who, { type: 'repository', name: 'dev-shared/tool', actions: ['pull'] })).toEqual([])
  })
})

describe('accounts from a base64 secret (auth.token.usersb64)', () => {
  const hash = bcrypt.hashSync('pw', 4)
  it("reads docker_auth's users file as written, its anonymous entry included", async () => {
    const accounts = createAccountsFromText(`users:\n  "": {}\n  "ci":\n    password: "${hash}"\n    labels: {group: [builders]}\n`, 'secret')
    expect(await accounts.fromBasic(`Basic ${Buffer.from('ci:pw').toString('base64')}`)).toBe('ci')
    expect(accounts.labels('ci')).toEqual({ group: ['builders'] })
    await expect(accounts.fromBasic(`Basic ${Buffer.from('ci:wrong').toString('base64')}`)).rejects.toThrow('invalid username or password')
    // The anonymous entry is no account: an empty user with a password cannot log in.
    await expect(accounts.fromBasic(`Basic ${Buffer.from(':pw').toString('base64')}`)).rejects.toThrow('invalid username or password')
  })

  it('refuses a named user without a password', () => {
    expect(() => createAccountsFromText('users:\n  bob: {}\n', 'secret')).toThrow('secret: "bob" has no password')
  })
})
