/**
 * A small registry client for end-to-end flows that no packaged client drives (VM-image pushes, the
 * referrers API): fetch plus the Docker token dance, as real clients do it — a request, a 401 with a
 * Bearer challenge, a token from the realm with Basic credentials, the request again.
 */
export class RegistryClient {
  private readonly tokens = new Map<string, string>()

  constructor(readonly base: string, private readonly credentials?: { user: string; password: string }) {}

  /** A request to the registry (path or absolute URL), authenticated when it asks for it. */
  async fetch(pathOrUrl: string, init: RequestInit & { scope: string }): Promise<Response> {
    const url = new URL(pathOrUrl, this.base)
    const send = () => {
      const token = this.tokens.get(init.scope)
      const headers = new Headers(init.headers)
      if (token) headers.set('Authorization', `Bearer ${token}`)
      return fetch(url, { ...init, headers, duplex: 'half' } as RequestInit)
    }
    const first = await send()
    if (first.status !== 401 || !this.credentials) return first
    const challenge = first.headers.get('www-authenticate') ?? ''
    await first.arrayBuffer()
    if (!challenge.startsWith('Bearer ')) throw new Error(`expected a Bearer challenge, got "${challenge}"`)
    if (init.body && typeof (init.body as { pipe?: unknown }).pipe === 'function') throw new Error('a streamed body cannot be sent twice: get a token first (authorize)')
    await this.authorize(challenge, init.scope)
    return send()
  }

  /** Gets a token for `scope` from the realm a challenge names. */
  private async authorize(challenge: string, scope: string): Promise<void> {
    const param = (name: string) => new RegExp(`${name}="([^"]*)"`).exec(challenge)?.[1] ?? ''
    const url = new URL(param('realm'))
    url.searchParams.set('service', param('service'))
    for (const s of scope.split(' ')) url.searchParams.append('scope', s)
    const { user, password } = this.credentials!
    const res = await fetch(url, { headers: { Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` } })
    if (res.status !== 200) throw new Error(`token request: ${res.status} ${await res.text()}`)
    this.tokens.set(scope, ((await res.json()) as { token: string }).token)
  }

  /** Gets a token up front (before a streamed body, which can't be replayed after a 401). */
  async warm(repo: string, actions: string): Promise<void> {
    const scope = `repository:${repo}:${actions}`
    const res = await this.fetch(`/v2/${repo}/tags/list`, { scope })
    await res.arrayBuffer()
  }
}

export const scopes = (repo: string) => ({ pull: `repository:${repo}:pull`, push: `repository:${repo}:pull,push` })
