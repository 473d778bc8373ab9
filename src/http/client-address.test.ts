import { describe, expect, it } from 'vitest'
import { clientAddress, clientAddresses, parseNetwork } from './client-address.js'

describe('clientAddress', () => {
  it('is the socket address of a direct connection, whatever X-Forwarded-For claims', () => {
    expect(clientAddress('203.0.113.7', undefined)).toBe('203.0.113.7')
    expect(clientAddress('203.0.113.7', '10.0.0.1')).toBe('203.0.113.7')
    expect(clientAddress('::ffff:203.0.113.7', '198.51.100.1')).toBe('203.0.113.7')
  })

  it('behind a proxy on an internal address, is the address that proxy saw', () => {
    expect(clientAddress('127.0.0.1', '198.51.100.9')).toBe('198.51.100.9')
    expect(clientAddress('172.16.3.4', '2001:db8::5')).toBe('2001:db8::5')
    expect(clientAddress('fdaa:0:1::2', '198.51.100.9:51234')).toBe('198.51.100.9')
    expect(clientAddress('::1', '[2001:db8::5]:443')).toBe('2001:db8::5')
  })

  it('ignores what the client wrote itself in front of the proxy entries', () => {
    // A client sends "X-Forwarded-For: 10.1.2.3" to look internal; the proxy appends its real address.
    expect(clientAddress('127.0.0.1', '10.1.2.3, 198.51.100.9')).toBe('198.51.100.9')
    expect(clientAddress('127.0.0.1', 'anything, 198.51.100.9')).toBe('198.51.100.9')
  })

  it('walks back over internal proxies to the first outside address', () => {
    expect(clientAddress('10.0.0.2', '203.0.113.1, 198.51.100.9, 10.0.0.5')).toBe('198.51.100.9')
    // Inside a private network the earliest hop the proxies vouch for is the client.
    expect(clientAddress('10.0.0.2', '192.168.1.20, 10.0.0.5')).toBe('192.168.1.20')
  })

  it('stops at an entry no proxy could have written', () => {
    expect(clientAddress('127.0.0.1', 'garbage')).toBe('127.0.0.1')
    expect(clientAddress('127.0.0.1', '198.51.100.9, unknown, 10.0.0.5')).toBe('10.0.0.5')
  })
})

describe('clientAddresses with trusted proxies on public addresses (a CDN in front)', () => {
  const viaCdn = clientAddresses(['203.0.113.0/24', '2001:db8:cd::/48'])

  it('believes X-Forwarded-For from a listed proxy, and only from it', () => {
    expect(viaCdn.of('203.0.113.50', '198.51.100.9')).toBe('198.51.100.9')
    expect(viaCdn.of('2001:db8:cd::7', '198.51.100.9')).toBe('198.51.100.9')
    // The same header from an address not on the list is the client's own claim.
    expect(viaCdn.of('192.0.2.1', '198.51.100.9')).toBe('192.0.2.1')
    expect(clientAddress('203.0.113.50', '198.51.100.9')).toBe('203.0.113.50')
  })

  it('walks back over the CDN and the internal proxy behind it, ignoring what the client wrote', () => {
    // client → CDN (203.0.113.50) → fly.io's proxy (fdaa::) → enlil
    expect(viaCdn.of('fdaa:0:1::2', '10.9.9.9, 198.51.100.9, 203.0.113.50')).toBe('198.51.100.9')
    // Without the CDN on the list, the CDN is the client, as before.
    expect(clientAddress('fdaa:0:1::2', '10.9.9.9, 198.51.100.9, 203.0.113.50')).toBe('203.0.113.50')
  })

  it('reads the request\'s socket and header', () => {
    const request = { req: { header: (name: string) => (name === 'x-forwarded-for' ? '198.51.100.9' : undefined) }, env: { incoming: { socket: { remoteAddress: '::ffff:203.0.113.50' } } } }
    expect(viaCdn.ofRequest(request)).toBe('198.51.100.9')
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
