/**
 * An attacker's requests: the request line sent byte for byte over a socket (fetch would normalise
 * `..` and `%2e` away before the registry sees them), and the token dance of a docker client.
 */
import net from 'node:net'

export interface RawReply {
  status: number
  headers: Record<string, string>
  body: string
}

/** Sends `method path` exactly as written, on its own connection; resolves with what came back (10 s at most). */
export function raw(base: string, method: string, path: string, headers: Record<string, string> = {}, body?: Buffer | string): Promise<RawReply> {
  const url = new URL(base)
  const sent = body === undefined ? headers : { ...headers, 'Content-Length': String(Buffer.byteLength(body)) }
  const head = [`${method} ${path} HTTP/1.1`, `Host: ${url.host}`, 'Connection: close', ...Object.entries(sent).map(([k, v]) => `${k}: ${v}`), '', ''].join('\r\n')
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: url.hostname, port: Number(url.port) })
    const chunks: Buffer[] = []
    const timer = setTimeout(() => socket.destroy(new Error(`no answer to ${method} ${path} within 10 s`)), 10_000)
    socket.on('data', (d: Buffer) => chunks.push(d))
    // A refusal may close (or reset) the connection before the body was read: the answer that came whole is the result.
    socket.on('error', (err) => {
      if (Buffer.concat(chunks).includes('\r\n\r\n')) return socket.destroy()
      clearTimeout(timer)
      reject(err)
    })
    socket.on('close', () => {
      clearTimeout(timer)
      const text = Buffer.concat(chunks).toString('latin1')
      const end = text.indexOf('\r\n\r\n')
      if (end < 0) return reject(new Error(`no response head for ${method} ${path}: ${JSON.stringify(text.slice(0, 200))}`))
      const [statusLine = '', ...lines] = text.slice(0, end).split('\r\n')
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]))
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body: text.slice(end + 4) })
    })
    socket.write(head)
    if (body !== undefined) socket.write(body)
  })
}

/** The OCI error code of a reply ('' when its body is not the error envelope). */
export function codeOf(reply: RawReply | { body: string }): string {
  try {
    return (JSON.parse(reply.body) as { errors: { code: string }[] }).errors[0]!.code
  } catch {
    return ''
  }
}

/** A token from enlil's own token endpoint for `scopes`, as `authorization` (Basic) or anonymous. */
export async function tokenFor(base: string, service: string, scopes: string[], authorization?: string): Promise<string> {
  const query = [`service=${encodeURIComponent(service)}`, ...scopes.map((s) => `scope=${encodeURIComponent(s)}`)].join('&')
  const res = await fetch(`${base}/auth/token?${query}`, { headers: authorization ? { Authorization: authorization } : {} })
  if (res.status !== 200) throw new Error(`token for ${scopes.join(' ')}: ${res.status} ${await res.text()}`)
  return `Bearer ${((await res.json()) as { token: string }).token}`
}

/** The claims of a JWT, unverified (to see what a token grants). */
export function claimsOf(authorization: string): { sub: string; access: { type: string; name: string; actions: string[] }[] } {
  return JSON.parse(Buffer.from(authorization.replace(/^Bearer /, '').split('.')[1]!, 'base64url').toString())
}
