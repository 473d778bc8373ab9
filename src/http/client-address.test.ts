import { describe, expect, it } from 'vitest'
import { clientAddress } from './client-address.js'

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
