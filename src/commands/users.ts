/** @module `enlil users add NAME --file HTPASSWD`: a bcrypt entry in an htpasswd file. */
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { Writable } from 'node:stream'
import bcrypt from 'bcryptjs'

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
