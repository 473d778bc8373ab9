/** `enlil users add` and `enlil keys generate`, run as a user runs them. */
import { spawnSync } from 'node:child_process'
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import bcrypt from 'bcryptjs'
import { afterAll, describe, expect, it } from 'vitest'
import { parseAccounts } from '../src/auth/accounts.js'
import { loadSigningKey } from '../src/auth/token.js'
import { removeDir, ROOT, tempDir } from './support/processes.js'

const dir = tempDir('cli')
afterAll(() => removeDir(dir))
const enlil = (args: string[], input = '') => spawnSync(process.execPath, [join(ROOT, 'dist/main.js'), ...args], { input, encoding: 'utf8', timeout: 20_000 })

describe('enlil users add', () => {
  it('creates an htpasswd file only its owner reads, adds users, replaces a user\'s password', () => {
    const file = join(dir, 'htpasswd')
    expect(enlil(['users', 'add', 'alice', '--file', file], 'first password\n').stderr).toContain(`created ${file}: alice`)
    expect(enlil(['users', 'add', 'bob', '--file', file], 'bob password\n').status).toBe(0)
    expect(enlil(['users', 'add', 'alice', '--file', file], 'second password\n').stderr).toContain('updated')
    const accounts = parseAccounts(readFileSync(file, 'utf8'), file)
    expect([...accounts.keys()].sort()).toEqual(['alice', 'bob'])
    expect(bcrypt.compareSync('second password', accounts.get('alice')!.hash)).toBe(true)
    expect(statSync(file).mode & 0o777).toBe(0o600)
  })

  it('refuses short passwords and bad usage', () => {
    expect(enlil(['users', 'add', 'carol', '--file', join(dir, 'x')], 'short\n').status).toBe(1)
    expect(enlil(['users', 'add', '--file', join(dir, 'x')], 'long enough pw\n').status).toBe(2)
  })
})

describe('enlil keys generate', () => {
  it.each([['ec', 'ES256'], ['rsa', 'RS256'], ['ed25519', 'EdDSA']])('%s → a PEM key enlil signs tokens with (%s)', async (type, alg) => {
    const result = enlil(['keys', 'generate', '--type', type])
    expect(result.status).toBe(0)
    const key = await loadSigningKey(result.stdout)
    expect(key.alg).toBe(alg)
    expect(result.stderr).toContain(key.kid)
  })
})

describe('enlil config check', () => {
  it('prints the effective settings with secrets masked', () => {
    const result = spawnSync(process.execPath, [join(ROOT, 'dist/main.js'), 'config', 'check'], {
      env: { ...process.env, REGISTRY_STORAGE: 's3', REGISTRY_STORAGE_S3_BUCKET: 'b', REGISTRY_STORAGE_S3_ACCESSKEY: 'AKIDEXAMPLE', REGISTRY_STORAGE_S3_SECRETKEY: 'very-secret' },
      encoding: 'utf8', timeout: 20_000,
    })
    expect(result.status).toBe(0)
    const config = JSON.parse(result.stdout) as { storage: { driver: string; s3: Record<string, unknown> }; http: { addr: string } }
    expect(config.storage.driver).toBe('s3')
    expect(config.storage.s3).toMatchObject({ bucket: 'b', accesskey: '***', secretkey: '***' })
    expect(config.http.addr).toBe(':5000')
    expect(result.stdout).not.toContain('very-secret')
  })

  it('exits 1 with one line per problem', () => {
    const result = spawnSync(process.execPath, [join(ROOT, 'dist/main.js'), 'config', 'check'], {
      env: { ...process.env, REGISTRY_STORAGE: 's3', REGISTRY_HTTP_ADDR: 'x' }, encoding: 'utf8', timeout: 20_000,
    })
    expect(result.status).toBe(1)
    expect(result.stderr.trim().split('\n')).toHaveLength(2)
  })
})

describe('enlil --help, and mistakes on the command line', () => {
  const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version

  it('enlil, enlil -h, --help and help list every command on stdout and exit 0', () => {
    for (const args of [[], ['-h'], ['--help'], ['help']]) {
      const result = enlil(args)
      expect(result.status, args.join(' ')).toBe(0)
      expect(result.stdout).toMatch(/^usage: enlil COMMAND/)
      for (const command of ['serve', 'config check', 'config convert', 'users add', 'keys generate', 'healthcheck', 'readonly on', 'gc']) expect(result.stdout).toContain(`  ${command} `)
    }
    expect(enlil(['--version']).stdout.trim()).toBe(version)
    expect(enlil(['version']).stdout.trim()).toBe(version)
  })

  // Every command enlil --help lists, and every group: --help says what it takes and does nothing else.
  const listed = enlil(['--help']).stdout.split('commands:\n')[1]!.split('\n\n')[0]!.split('\n').map((l) => l.trim().split(/\s{2,}/)[0]!)
  it.each(listed.map((c) => [c]))('enlil %s --help prints its usage and options, and does not run it', (command) => {
    // A healthcheck that ran would fail (nothing listens there); keys generate would print a key.
    const result = spawnSync(process.execPath, [join(ROOT, 'dist/main.js'), ...command.split(' '), '--help'], {
      encoding: 'utf8', timeout: 20_000, cwd: dir, env: { ...process.env, REGISTRY_HTTP_ADDR: '127.0.0.1:9', REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: join(dir, 'help-store') },
    })
    expect(result.status).toBe(0)
    expect(result.stderr).toBe('')
    expect(result.stdout).toMatch(new RegExp(`^usage: enlil ${command}`))
    expect(result.stdout).toContain('-h, --help')
    expect(result.stdout).not.toContain('PRIVATE KEY')
    expect(result.stdout).not.toContain('"http"')
    expect(enlil([...command.split(' '), '-h']).stdout).toBe(result.stdout)
    expect(enlil(['help', ...command.split(' ')]).stdout).toBe(result.stdout)
  })

  it.each([['config'], ['users'], ['keys'], ['readonly']])('enlil %s --help lists its commands', (group) => {
    const result = enlil([group, '--help'])
    expect(result.status).toBe(0)
    expect(result.stdout).toMatch(new RegExp(`^usage: enlil ${group} `))
    for (const command of listed.filter((c) => c.startsWith(`${group} `))) expect(result.stdout).toContain(command)
    // Without a command, the same list is the error.
    const bare = enlil([group])
    expect(bare.status).toBe(2)
    expect(bare.stderr).toContain(`enlil ${group}: which command?`)
  })

  it.each([
    [['config', 'chek'], 'enlil config: unknown command "chek"; did you mean "check"?', 'check, convert'],
    [['keys', 'gen'], 'enlil keys: unknown command "gen"; did you mean "generate"?', 'generate'],
    [['users', 'del'], 'enlil users: unknown command "del"\n', 'the users commands: add'],
    [['serv'], 'enlil: unknown command "serv"; did you mean "serve"?', 'serve, config, users, keys, healthcheck, readonly, gc'],
    [['serve', '--wrokers', '2'], 'enlil serve: unknown option "--wrokers"; did you mean "--workers"?', 'usage: enlil serve '],
    [['gc', '--grace'], 'enlil gc: --grace needs a value', 'usage: enlil gc '],
    [['gc', '--dry-run=yes'], 'enlil gc: --dry-run takes no value', 'usage: enlil gc '],
    [['serve', 'a.yml', '--config', 'b.yml'], 'two config files', 'usage: enlil serve '],
    [['users', 'add', 'alice'], '--file HTPASSWD is required', 'usage: enlil users add'],
    [['keys', 'generate', '--type', 'dsa'], '--type is ec, rsa or ed25519 (got "dsa")', 'usage: enlil keys generate'],
  ])('enlil %j: exit 2, the valid choices, nothing done', (args, message, choices) => {
    const result = enlil(args)
    expect(result.status).toBe(2)
    expect(result.stdout).toBe('')
    expect(result.stderr).toContain(message)
    expect(result.stderr).toContain(choices)
    expect(result.stderr).not.toContain('unknown command "config"')
  })

  it('--workers two names --workers, not ENLIL_WORKERS, which the user never set', () => {
    const env = { ...process.env }
    delete env.ENLIL_WORKERS
    const two = spawnSync(process.execPath, [join(ROOT, 'dist/main.js'), 'serve', '--workers', 'two'], { encoding: 'utf8', timeout: 20_000, env })
    expect(two.status).toBe(2)
    expect(two.stderr).toContain('--workers takes a number of processes, or auto (got "two")')
    expect(two.stderr).not.toContain('ENLIL_WORKERS')
    const zero = spawnSync(process.execPath, [join(ROOT, 'dist/main.js'), 'serve', '--workers', '0'], { encoding: 'utf8', timeout: 20_000, env })
    expect(zero.status).toBe(1)
    expect(zero.stderr).toMatch(/^enlil: config: http\.workers \(from --workers 0\): /)
    expect(zero.stderr).not.toContain('ENLIL_WORKERS')
    // The variable, set to something that is no number, is named with what it takes.
    const variable = spawnSync(process.execPath, [join(ROOT, 'dist/main.js'), 'serve'], { encoding: 'utf8', timeout: 20_000, env: { ...env, ENLIL_WORKERS: 'two' } })
    expect(variable.status).toBe(1)
    expect(variable.stderr).toContain('http.workers (from ENLIL_WORKERS): expected a whole number of processes from 1 to 64, or auto')
  })
})

describe("the README's commands", () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  // The lines of the shell blocks (```sh, or ``` holding a `$ ` prompt), without prompts and comments.
  const lines: string[] = []
  let block: string | undefined
  for (const line of readme.split('\n')) {
    if (line.startsWith('```')) block = block === undefined ? line.slice(3).trim() : undefined
    else if (block === 'sh' || (block === '' && line.startsWith('$ '))) lines.push(line.replace(/^\$ /, '').replace(/\s+#.*$/, '').trim())
  }
  const commands = lines.flatMap((l) => [...l.matchAll(/(?:^|&& |\S+=\S+ )npx enlil ((?:[^|>&]|\|(?=\w))+)/g)].map((m) => m[1]!.trim()))

  it('are written so that they run after the Quick start: npx enlil, never a bare enlil', () => {
    expect(commands.length).toBeGreaterThan(15)
    expect(lines.filter((l) => /(^|&& |\S+=\S+ )enlil /.test(l))).toEqual([])
  })

  it('name commands and options that exist', () => {
    const help = new Map<string, string>()
    for (const command of commands) {
      const words = command.split(/\s+/)
      const path = ['config', 'users', 'keys', 'readonly'].includes(words[0]!) ? words.slice(0, 2) : words.slice(0, 1)
      // `readonly on|off|status`: each of them.
      for (const variant of path.join(' ').includes('|') ? path[1]!.split('|').map((sub) => [path[0]!, sub]) : [path]) {
        const key = variant.join(' ')
        if (!help.has(key)) {
          const result = enlil([...variant, '--help'])
          expect(result.status, `npx enlil ${key}`).toBe(0)
          help.set(key, result.stdout)
        }
        for (const option of command.match(/--[a-z-]+/g) ?? []) expect(help.get(key), `npx enlil ${command}`).toContain(option)
      }
    }
  })

  it('npx enlil runs this build from the clone', () => {
    const result = spawnSync('npx', ['--no', 'enlil', 'help'], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 })
    expect(result.status).toBe(0)
    expect(result.stdout).toMatch(/^usage: enlil COMMAND/)
  })
})
