/** @module `enlil keys generate`: a token signing key. */
import { generateKeyPairSync } from 'node:crypto'
import { loadSigningKey } from '../auth/token.js'

/** `enlil keys generate [--type ec|rsa|ed25519]`: a token signing key, PEM on stdout, its kid on stderr. */
export async function keysGenerate(args: string[]): Promise<number> {
  const typeIndex = args.indexOf('--type')
  const type = typeIndex >= 0 ? args[typeIndex + 1] : 'ec'
  let pem: string
  if (type === 'ec') pem = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  else if (type === 'rsa') pem = generateKeyPairSync('rsa', { modulusLength: 3072 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  else if (type === 'ed25519') pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  else {
    console.error('usage: enlil keys generate [--type ec|rsa|ed25519] > token.pem')
    return 2
  }
  const key = await loadSigningKey(pem)
  process.stdout.write(pem)
  console.error(`${key.alg} key, kid ${key.kid}; base64 for JWT_KEY_B64: base64 -w0 < the file`)
  return 0
}
