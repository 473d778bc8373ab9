import { describe, expect, it } from 'vitest'
import { createTokenIssuer, loadSigningKey } from '../../auth/token.js'
import { aclSchema } from '../../auth/acl.js'
import { clientAddresses } from '../client-address.js'
import { tokenRoutes } from './token.js'

/** The access a token grants, from its claims. */
function accessOf(token: string): unknown {
  return (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { access: unknown }).access
}

describe('the token route behind a CDN on public addresses', async () => {
  const issuer = createTokenIssuer({ key: await loadSigningKey(), issuer: 'enlil', service: 'reg', expiresInMs: 60_000 })
  const accounts = { fromBasic: async () => undefined, labels: () => ({}) }
  // Anonymous pulls from the office network only (docker_auth's `ip` match).
  const acl = aclSchema.parse([{ match: { account: '', ip: '198.51.100.9' }, actions: ['pull'] }])
  const ask = (routes: ReturnType<typeof tokenRoutes>) => routes.request('/?service=reg&scope=repository:team/app:pull',
    { headers: { 'X-Forwarded-For': '198.51.100.9' } },
    // As @hono/node-server passes them: the connection comes from the CDN's edge.
    { incoming: { socket: { remoteAddress: '203.0.113.50' } } })

  it('matches the ACL against the client the CDN saw when the CDN is trusted', async () => {
    const res = await ask(tokenRoutes({ accounts, issuer, acl, addresses: clientAddresses(['203.0.113.0/24']) }))
    expect(res.status).toBe(200)
    expect(accessOf(((await res.json()) as { token: string }).token)).toEqual([{ type: 'repository', name: 'team/app', actions: ['pull'] }])
  })

  it('takes the CDN itself as the client when it is not', async () => {
    const res = await ask(tokenRoutes({ accounts, issuer, acl }))
    expect(res.status).toBe(200)
    expect(accessOf(((await res.json()) as { token: string }).token)).toEqual([])
  })
})
