/** @module `enlil keys generate`: a token signing key. */
import { generateKeyPairSync } from 'node:crypto'
import { loadSigningKey } from '../auth/token.js'

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
