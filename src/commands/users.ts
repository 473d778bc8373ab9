/** @module `enlil users add NAME --file HTPASSWD`: a bcrypt entry in an htpasswd file. */
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { Writable } from 'node:stream'
import bcrypt from 'bcryptjs'
import { type CommandGroup, usageError } from './cli.js'

const ADD_USAGE = 'usage: enlil users add NAME --file HTPASSWD'

export const usersSpec: CommandGroup = {
  name: 'users',
  subcommands: [{
    name: 'add',
    summary: 'add an account to an htpasswd file, or change its password',
    usage: 'NAME --file HTPASSWD',
    description: `Writes NAME with a bcrypt hash of its password into the htpasswd file (created, readable by
its owner only), replacing NAME's old entry. The password is the first line of stdin, or asked
for on a terminal; at least 8 characters. The file serves auth.htpasswd.path and
auth.token.users.`,
    options: { file: { type: 'string', value: 'HTPASSWD', description: 'the htpasswd file (required)' } },
    positionals: [1, 1],
    run: ({ options, positionals }) => {
      const name = positionals[0]!
      const file = options.file as string | undefined
      if (!file) return Promise.resolve(usageError('users add', '--file HTPASSWD is required', ADD_USAGE))
      if (!/^[^:\s]+$/.test(name)) return Promise.resolve(usageError('users add', `a user name has no ":" or spaces (got "${name}")`, ADD_USAGE))
      return usersAdd(name, file)
    },
  }],
}

/** Reads a password: the first line of stdin, or a prompt without echo on a terminal. */
async function readPassword(): Promise<string> {
  const muted = new Writable({ write: (_chunk, _enc, done) => done() })
  const tty = process.stdin.isTTY
  if (tty) process.stderr.write('Password: ')
  const rl = createInterface({ input: process.stdin, output: tty ? muted : undefined, terminal: tty })
  const line = await new Promise<string>((ok) => {
    rl.once('line', ok)
    rl.once('close', () => ok(''))
  })
  rl.close()
  if (tty) process.stderr.write('\n')
  return line
}

/** `enlil users add NAME --file F`: a bcrypt entry in an htpasswd file, replacing the user's old one. */
export async function usersAdd(name: string, file: string): Promise<number> {
  const password = await readPassword()
  if (password.length < 8) {
    console.error('enlil: the password must have at least 8 characters')
    return 1
  }
  const entry = `${name}:${bcrypt.hashSync(password, 10)}`
  const existed = existsSync(file)
  const lines = existed ? readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() && !l.startsWith(`${name}:`)) : []
  writeFileSync(file, `${[...lines, entry].join('\n')}\n`, { mode: 0o600 })
  chmodSync(file, 0o600)
  console.error(`${existed ? 'updated' : 'created'} ${file}: ${name}`)
  return 0
}
