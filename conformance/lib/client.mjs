/**
 * A small HTTP client for the registry under test: Node's fetch, plus the two ways registries ask
 * for credentials (Basic, and Docker's token protocol: a Bearer challenge naming a realm to get a
 * token from), and a raw-socket request for checking what a HEAD response really carries.
 */
import net from 'node:net'
import tls from 'node:tls'

/** One response, read whole, with what is needed to explain a failed assertion. */
export class Reply {
  constructor(method, url, requestHeaders, status, headers, body) {
    this.method = method
    this.url = url
    this.requestHeaders = requestHeaders
    this.status = status
    this.headers = headers
    this.body = body
  }

  header(name) {
    return this.headers.get(name)
  }

  get text() {
    return this.body.toString('utf8')
  }

  /** The body as JSON, or undefined when it is not JSON. */
  json() {
    try {
      return JSON.parse(this.text)
    } catch {
      return undefined
    }
  }

  /** The exchange in a few lines, for assertion messages. */
  get info() {
    const shown = ['content-range', 'content-type', 'content-length', 'range', 'accept']
    const sent = Object.entries(this.requestHeaders)
      .filter(([k]) => shown.includes(k.toLowerCase()))
      .map(([k, v]) => `${k}: ${v}`)
    const got = [...this.headers].map(([k, v]) => `${k}: ${v.length > 200 ? `${v.slice(0, 200)}…` : v}`)
    let body = this.text
    if (/[^\t\n\r\x20-\x7e]/.test(body.slice(0, 200))) body = `<${this.body.length} bytes of binary data>`
    else if (body.length > 600) body = `${body.slice(0, 600)}… (${this.body.length} bytes)`
    return [
      `${this.method} ${this.url}${sent.length ? ` [${sent.join('; ')}]` : ''}`,
      `→ ${this.status}`,
      ...got.map((h) => `  ${h}`),
      ...(body ? [`  ${body}`] : []),
    ].join('\n')
  }
}

/** Parses the first challenge of a WWW-Authenticate header: `Bearer realm="…",service="…",scope="…"`. */
export function parseChallenge(header) {
  const m = /^\s*([A-Za-z][A-Za-z0-9_-]*)\s*(.*)$/s.exec(header ?? '')
  if (!m) return undefined
  const params = {}
  const pair = /([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?\s*/gy
  let p
  while ((p = pair.exec(m[2])) !== null) {
    params[p[1].toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3]
  }
  return { scheme: m[1].toLowerCase(), params }
}

/** `/v2/<name>/(blobs|manifests|tags|referrers)/…` → `<name>`, for remembering which token a repository needed. */
function repositoryOf(pathname) {
  const m = /^\/v2\/(.+?)\/(blobs|manifests|tags|referrers)\//.exec(pathname)
  return m ? m[1] : ''
}

export class Client {
  constructor({ url, username, password, debug = false }) {
    this.base = url.replace(/\/+$/, '')
    this.username = username
    this.password = password
    this.debug = debug
    /** Scope string → bearer token. */
    this.tokens = new Map()
    /** `<repository> <pull|push>` → the scope string the registry asked for last time. */
    this.scopes = new Map()
    /** True once the registry asked for Basic credentials: they are then sent up front. */
    this.basic = false
    /** Every Warning header value seen, for the checks of the "Warnings" section. */
    this.warnings = []
  }

  /** A path (`/v2/…`), a Location header (relative or absolute) or a URL, as an absolute URL. */
  resolve(target) {
    return new URL(String(target), `${this.base}/`)
  }

  basicCredentials() {
    if (this.username === undefined) return undefined
    return `Basic ${Buffer.from(`${this.username}:${this.password ?? ''}`).toString('base64')}`
  }

  /** The Authorization header to send up front for this request, if any is known. */
  knownAuthorization(url, method) {
    if (this.basic) return this.basicCredentials()
    const key = `${repositoryOf(url.pathname)} ${method === 'GET' || method === 'HEAD' ? 'pull' : 'push'}`
    const scope = this.scopes.get(key)
    if (scope !== undefined && this.tokens.has(scope)) return `Bearer ${this.tokens.get(scope)}`
    return undefined
  }

  /** Answers a 401's challenge; returns the Authorization header to retry with, or undefined. */
  async answerChallenge(url, method, header) {
    const challenge = parseChallenge(header)
    if (!challenge) return undefined
    if (challenge.scheme === 'basic') {
      const creds = this.basicCredentials()
      if (creds) this.basic = true
      return creds
    }
    if (challenge.scheme !== 'bearer' || !challenge.params.realm) return undefined
    const scope = challenge.params.scope ?? ''
    this.scopes.set(`${repositoryOf(url.pathname)} ${method === 'GET' || method === 'HEAD' ? 'pull' : 'push'}`, scope)
    if (!this.tokens.has(scope)) this.tokens.set(scope, await this.fetchToken(challenge.params, scope))
    return `Bearer ${this.tokens.get(scope)}`
  }

  async fetchToken(params, scope) {
    const realm = new URL(params.realm)
    if (params.service) realm.searchParams.set('service', params.service)
    for (const s of scope.split(' ').filter(Boolean)) realm.searchParams.append('scope', s)
    const headers = {}
    const creds = this.basicCredentials()
    if (creds) headers.Authorization = creds
    const res = await fetch(realm, { headers, signal: AbortSignal.timeout(30_000) })
    const text = await res.text()
    if (res.status !== 200) throw new Error(`token request GET ${realm} → ${res.status}: ${text.slice(0, 300)}`)
    const json = JSON.parse(text)
    const token = json.token ?? json.access_token
    if (typeof token !== 'string' || !token) throw new Error(`token response from ${realm} has no token: ${text.slice(0, 300)}`)
    return token
  }

  /**
   * Sends a request and reads the whole response. `body` is a Buffer or string, or a function
   * returning an async iterable for a streamed body (sent with chunked transfer encoding); a
   * function is called again if the request has to be repeated with credentials.
   * `auth: false` sends no credentials and does not answer challenges.
   */
  async request(method, target, { headers = {}, body, auth = true, redirect = 'follow', timeout = 60_000 } = {}) {
    const url = this.resolve(target)
    const send = async (authorization) => {
      const h = { ...headers }
      if (authorization) h.Authorization = authorization
      const init = { method, headers: h, redirect, signal: AbortSignal.timeout(timeout) }
      if (typeof body === 'function') {
        init.body = body()
        init.duplex = 'half'
      } else if (body !== undefined) {
        init.body = body
      }
      let res
      try {
        res = await fetch(url, init)
      } catch (err) {
        throw new Error(`${method} ${url.href}: no response (${err.cause?.message ?? err.message})`, { cause: err })
      }
      let bytes = Buffer.alloc(0)
      if (method !== 'HEAD') {
        try {
          bytes = Buffer.from(await res.arrayBuffer())
        } catch (err) {
          const head = [...res.headers].map(([k, v]) => `  ${k}: ${v}`).join('\n')
          throw new Error(`${method} ${url.href} → ${res.status}, then the body broke off (${err.cause?.message ?? err.message})\n${head}`, { cause: err })
        }
      }
      const reply = new Reply(method, url.href, headers, res.status, res.headers, bytes)
      for (const w of res.headers.get('warning') ? [res.headers.get('warning')] : []) this.warnings.push(w)
      if (this.debug) console.log(reply.info)
      return reply
    }
    let reply = await send(auth ? this.knownAuthorization(url, method) : undefined)
    if (reply.status === 401 && auth) {
      const authorization = await this.answerChallenge(url, method, reply.header('www-authenticate'))
      if (authorization) reply = await send(authorization)
    }
    return reply
  }

  /**
   * The same request over a bare socket, to see the bytes a server sends after the headers
   * (fetch drops any body of a HEAD response). Resolves once the server closes, or 500 ms after
   * the headers if it keeps the connection open.
   */
  async raw(method, target, headers = {}) {
    const url = this.resolve(target)
    // Prime the credentials the normal way first.
    await this.request(method, url, { headers })
    return exchange(url, method, `${url.pathname}${url.search}`, headers, this.knownAuthorization(url, method))
  }

  /**
   * Sends `path` exactly as written: no URL parsing, so `.`/`..` segments and percent-encoding
   * reach the registry as a hostile client sends them (fetch would normalise them away). It carries
   * the credentials the normal URL `like` needed, primed by a GET or HEAD of it (never a write).
   */
  async verbatim(method, path, { like, headers = {}, body } = {}) {
    const url = this.resolve(like ?? '/v2/')
    const readOnly = method === 'GET' || method === 'HEAD' ? method : 'GET'
    await this.request(readOnly, url)
    const sent = body === undefined ? headers : { ...headers, 'Content-Length': String(Buffer.byteLength(body)) }
    return exchange(url, method, path, sent, this.knownAuthorization(url, method) ?? this.knownAuthorization(url, readOnly), body)
  }
}

/** One request on its own connection to `url`'s host; resolves with the status, head and the bytes after it. */
function exchange(url, method, requestTarget, headers, authorization, body) {
  const lines = [
    `${method} ${requestTarget} HTTP/1.1`,
    `Host: ${url.host}`,
    'Connection: close',
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    ...(authorization ? [`Authorization: ${authorization}`] : []),
    '', '',
  ]
  const secure = url.protocol === 'https:'
  const port = Number(url.port || (secure ? 443 : 80))
  return new Promise((resolve, reject) => {
    const socket = secure
      ? tls.connect({ host: url.hostname, port, servername: url.hostname })
      : net.connect({ host: url.hostname, port })
    let data = Buffer.alloc(0)
    let settle
    const finish = () => {
      clearTimeout(settle)
      clearTimeout(overall)
      socket.destroy()
      const end = data.indexOf('\r\n\r\n')
      if (end < 0) return reject(new Error(`no complete response head from ${url.host} for ${method} ${requestTarget}: ${JSON.stringify(data.toString('latin1').slice(0, 200))}`))
      const head = data.subarray(0, end).toString('latin1')
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1])
      const rest = data.subarray(end + 4)
      const shown = /[^\t\n\r\x20-\x7e]/.test(rest.subarray(0, 200).toString('latin1')) ? `<${rest.length} bytes of binary data>` : rest.toString('latin1').slice(0, 300)
      resolve({ status, head, rest, info: `${method} ${requestTarget}\n→ ${head}\n  ${shown}` })
    }
    const overall = setTimeout(finish, 10_000)
    // A registry that refuses a request early may close (or reset) before it read the body: its
    // answer, when it got here whole, is the result.
    socket.on('error', (err) => {
      if (data.includes('\r\n\r\n')) return finish()
      clearTimeout(overall); clearTimeout(settle); reject(err)
    })
    socket.on('data', (chunk) => {
      data = Buffer.concat([data, chunk])
      if (!settle && data.includes('\r\n\r\n')) settle = setTimeout(finish, 500)
    })
    socket.on('end', finish)
    socket.write(lines.join('\r\n'))
    // The body follows unless the registry answered the head already (then it would only be refused).
    if (body !== undefined) setTimeout(() => { if (data.length === 0 && !socket.destroyed) socket.write(body, () => {}) }, 200)
  })
}
