/**
 * A reverse proxy that puts a registry behind credentials, to check the suite's own client:
 * `basic` answers 401 with a Basic challenge until the right user and password come; `bearer`
 * plays Docker's token protocol (a Bearer challenge naming a realm on this proxy, a token per
 * requested scope, fetched with Basic credentials). Listens on 127.0.0.1 only.
 */
import { randomBytes } from 'node:crypto'
import http from 'node:http'

function grantsNeeded(method, url) {
  const m = /^\/v2\/(.+?)\/(blobs|manifests|tags|referrers)\//.exec(url.pathname)
  if (!m) return { scopes: [], needed: [] }
  const name = m[1]
  const read = method === 'GET' || method === 'HEAD'
  const scopes = [`repository:${name}:${read ? 'pull' : 'pull,push'}`]
  const needed = [`${name}:${read ? 'pull' : 'push'}`]
  const from = url.searchParams.get('from')
  if (method === 'POST' && url.searchParams.get('mount') && from) {
    scopes.push(`repository:${from}:pull`)
    needed.push(`${from}:pull`)
  }
  return { scopes, needed }
}

/** `repository:a/b:pull,push` → ["a/b:pull", "a/b:push"]. */
function grantsOf(scope) {
  const m = /^repository:(.+):([a-z,*]+)$/.exec(scope)
  return m ? m[2].split(',').map((action) => `${m[1]}:${action}`) : []
}

export async function startAuthProxy({ upstream, mode, username, password }) {
  const upstreamUrl = new URL(upstream)
  const expectedBasic = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`
  /** token → grants */
  const tokens = new Map()
  const stats = { challenges: 0, tokens: 0, forwarded: 0, refusedTokenRequests: 0 }
  let base = ''

  const refuse = (req, res, url) => {
    req.resume()
    stats.challenges++
    const { scopes } = grantsNeeded(req.method, url)
    const challenge = mode === 'basic'
      ? 'Basic realm="conformance self-test"'
      : `Bearer realm="${base}/token",service="conformance-selftest"${scopes.length ? `,scope="${scopes.join(' ')}"` : ''}`
    const body = JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required', detail: scopes }] })
    res.writeHead(401, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), 'WWW-Authenticate': challenge })
    res.end(body)
  }

  const server = http.createServer((req, res) => {
    const url = new URL(req.url, base)
    if (mode === 'bearer' && url.pathname === '/token') {
      req.resume()
      if (req.headers.authorization !== expectedBasic) {
        stats.refusedTokenRequests++
        res.writeHead(401, { 'Content-Type': 'application/json' })
        return res.end('{"details":"bad credentials"}')
      }
      const token = randomBytes(16).toString('hex')
      tokens.set(token, new Set(url.searchParams.getAll('scope').flatMap(grantsOf)))
      stats.tokens++
      res.writeHead(200, { 'Content-Type': 'application/json' })
      return res.end(JSON.stringify({ token, access_token: token, expires_in: 300 }))
    }
    const auth = req.headers.authorization ?? ''
    if (mode === 'basic') {
      if (auth !== expectedBasic) return refuse(req, res, url)
    } else {
      const granted = tokens.get(/^Bearer (\S+)$/.exec(auth)?.[1] ?? '')
      if (!granted || !grantsNeeded(req.method, url).needed.every((g) => granted.has(g))) return refuse(req, res, url)
    }
    stats.forwarded++
    const headers = { ...req.headers }
    delete headers.authorization
    const forward = http.request({
      host: upstreamUrl.hostname, port: upstreamUrl.port, method: req.method, path: req.url, headers,
    }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(res)
    })
    forward.on('error', (err) => {
      if (!res.headersSent) res.writeHead(502, { 'Content-Type': 'text/plain' })
      res.end(`proxy: ${err.message}`)
    })
    req.pipe(forward)
  })
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok))
  base = `http://127.0.0.1:${server.address().port}`
  return {
    url: base,
    stats,
    close: () => new Promise((ok) => {
      server.closeAllConnections()
      server.close(() => ok())
    }),
  }
}
