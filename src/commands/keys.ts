/** @module `enlil keys generate`: a token signing key. */
import { generateKeyPairSync } from 'node:crypto'
import { loadSigningKey } from '../auth/token.js'
import { type CommandGroup, usageError } from './cli.js'

const KEY_TYPES = ['ec', 'rsa', 'ed25519']

export const keysSpec: CommandGroup = {
  name: 'keys',
  subcommands: [{
    name: 'generate',
    summary: 'write a new token signing key (PEM) to stdout',
    usage: '[--type ec|rsa|ed25519] > token.pem',
    description: `Writes a new private key for signing tokens (auth.token.signingkey, or base64-encoded in
JWT_KEY_B64) as PEM to stdout, and its algorithm and key id to stderr. Every instance that issues
or checks tokens needs the same key.`,
    options: { type: { type: 'string', value: 'TYPE', description: 'ec (P-256, ES256; the default), rsa (3072 bits, RS256) or ed25519 (EdDSA)' } },
    positionals: [0, 0],
    run: ({ options }) => {
      const type = (options.type as string | undefined) ?? 'ec'
      if (!KEY_TYPES.includes(type)) return Promise.resolve(usageError('keys generate', `--type is ec, rsa or ed25519 (got "${type}")`, 'usage: enlil keys generate [--type ec|rsa|ed25519] > token.pem'))
      return keysGenerate(type)
    },
  }],
}

/** `enlil keys generate [--type ec|rsa|ed25519]`: a token signing key, PEM on stdout, its kid on stderr. */
export async function keysGenerate(type: string): Promise<number> {
  const pair = type === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 3072 })
    : type === 'ed25519' ? generateKeyPairSync('ed25519')
    : generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
  const pem = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  const key = await loadSigningKey(pem)
  process.stdout.write(pem)
  console.error(`${key.alg} key, kid ${key.kid}; base64 for JWT_KEY_B64: base64 -w0 < the file`)
  return 0
}
