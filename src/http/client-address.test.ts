import { describe, expect, it } from 'vitest'
import { clientAddresses, parseNetwork } from './client-address.js'

describe('clientAddresses with no trusted proxies (the default)', () => {
  const none = clientAddresses()

  it('is the socket address, whatever X-Forwarded-For or Fly-Client-IP claim', () => {
    expect(none.of('203.0.113.7', undefined)).toBe('203.0.113.7')
    expect(none.of('203.0.113.7', '10.0.0.1')).toBe('203.0.113.7')
    expect(none.of('::ffff:203.0.113.7', '198.51.100.1')).toBe('203.0.113.7')
  })

  it('trusts no peer for being on loopback or a private network', () => {
    // A client on the LAN or the pod network, or an nginx passing the client's header through.
    expect(none.of('127.0.0.1', '198.51.100.9')).toBe('127.0.0.1')
    expect(none.of('10.0.0.2', '198.51.100.9')).toBe('10.0.0.2')
    expect(none.of('172.16.3.4', undefined, '198.51.100.9')).toBe('172.16.3.4')
    expect(none.of('::1', '[2001:db8::5]:443')).toBe('::1')
    expect(none.of('fdaa:0:1::2', '198.51.100.9')).toBe('fdaa:0:1::2')
  })
})

describe('clientAddresses behind a proxy on the same host (trusted: 127.0.0.1)', () => {
  const local = clientAddresses(['127.0.0.1', '::1'])

  it('is the address the proxy wrote', () => {
    expect(local.of('127.0.0.1', '198.51.100.9')).toBe('198.51.100.9')
    expect(local.of('::ffff:127.0.0.1', '198.51.100.9:51234')).toBe('198.51.100.9')
    expect(local.of('::1', '[2001:db8::5]:443')).toBe('2001:db8::5')
  })

  it('ignores what the client wrote itself in front of the proxy entry: the rightmost untrusted hop wins', () => {
    // A client sends "X-Forwarded-For: 10.1.2.3" to look internal; the proxy appends its real address.
    expect(local.of('127.0.0.1', '10.1.2.3, 198.51.100.9')).toBe('198.51.100.9')
    expect(local.of('127.0.0.1', 'anything, 198.51.100.9')).toBe('198.51.100.9')
    expect(local.of('127.0.0.1', '127.0.0.1, 198.51.100.9')).toBe('198.51.100.9')
  })

  it('walks back over trusted hops only', () => {
    expect(local.of('127.0.0.1', '203.0.113.1, 198.51.100.9, 127.0.0.1')).toBe('198.51.100.9')
    // A private address is a client like any other: not skipped.
    expect(local.of('127.0.0.1', '198.51.100.9, 10.0.0.5')).toBe('10.0.0.5')
  })

  it('stops at an entry no proxy could have written', () => {
    expect(local.of('127.0.0.1', 'garbage')).toBe('127.0.0.1')
    expect(local.of('127.0.0.1', '198.51.100.9, unknown, 127.0.0.1')).toBe('127.0.0.1')
  })

  it('still takes an untrusted peer as it is', () => {
    expect(local.of('192.0.2.1', '198.51.100.9')).toBe('192.0.2.1')
    expect(local.of('10.0.0.2', '198.51.100.9')).toBe('10.0.0.2')
  })
})

describe('clientAddresses on fly.io (trusted: fly\'s proxy network, 172.16.0.0/12)', () => {
  const fly = clientAddresses(['172.16.0.0/12'])

  it('takes X-Forwarded-For from the proxy, which appended the client to whatever it sent', () => {
    expect(fly.of('172.19.5.6', '10.9.9.9, 198.51.100.9', '198.51.100.9')).toBe('198.51.100.9')
  })

  it('takes Fly-Client-IP from the proxy when it sent no X-Forwarded-For', () => {
    expect(fly.of('172.19.5.6', undefined, '198.51.100.9')).toBe('198.51.100.9')
    expect(fly.of('172.19.5.6', undefined, '2001:db8::7')).toBe('2001:db8::7')
    expect(fly.of('172.19.5.6', undefined, 'not an address')).toBe('172.19.5.6')
  })

  it('ignores Fly-Client-IP from anyone else', () => {
    expect(fly.of('198.51.100.1', undefined, '203.0.113.5')).toBe('198.51.100.1')
    expect(fly.of('127.0.0.1', undefined, '203.0.113.5')).toBe('127.0.0.1')
  })
})

describe('clientAddresses with a CDN in front, on public addresses', () => {
  const viaCdn = clientAddresses(['203.0.113.0/24', '2001:db8:cd::/48', 'fdaa::/16'])

  it('believes X-Forwarded-For from a listed proxy, and only from it', () => {
    expect(viaCdn.of('203.0.113.50', '198.51.100.9')).toBe('198.51.100.9')
    expect(viaCdn.of('2001:db8:cd::7', '198.51.100.9')).toBe('198.51.100.9')
    expect(viaCdn.of('192.0.2.1', '198.51.100.9')).toBe('192.0.2.1')
  })

  it('walks back over the CDN and the proxy behind it, ignoring what the client wrote', () => {
    // client → CDN (203.0.113.50) → an internal proxy (fdaa::) → enlil
    expect(viaCdn.of('fdaa:0:1::2', '10.9.9.9, 198.51.100.9, 203.0.113.50')).toBe('198.51.100.9')
    // Without the CDN on the list, the CDN is the client.
    expect(clientAddresses(['fdaa::/16']).of('fdaa:0:1::2', '10.9.9.9, 198.51.100.9, 203.0.113.50')).toBe('203.0.113.50')
  })

  it('reads the request\'s socket and headers', () => {
    const headers: Record<string, string> = { 'x-forwarded-for': '198.51.100.9' }
    const request = { req: { header: (name: string) => headers[name] }, env: { incoming: { socket: { remoteAddress: '::ffff:203.0.113.50' } } } }
    expect(viaCdn.ofRequest(request)).toBe('198.51.100.9')
    expect(clientAddresses().ofRequest(request)).toBe('203.0.113.50')
    expect(clientAddresses().ofRequest({ req: { header: () => '198.51.100.9' } })).toBe('')
  })

  it('takes addresses and CIDR networks, and refuses anything else', () => {
    expect(parseNetwork('203.0.113.7')).toEqual({ address: '203.0.113.7', bits: 32, family: 'ipv4' })
    expect(parseNetwork(' 2001:db8::/32 ')).toEqual({ address: '2001:db8::', bits: 32, family: 'ipv6' })
    for (const bad of ['203.0.113.0/33', 'example.com', '203.0.113.0/24/1', '203.0.113.0/', '2001:db8::/129', '']) {
      expect(parseNetwork(bad), bad).toBeUndefined()
    }
    expect(() => clientAddresses(['cdn.example.com'])).toThrow('not an IP address or network: cdn.example.com')
  })
})
