/**
 * @module The client's address, as login throttling and IP-based ACLs see it.
 *
 * X-Forwarded-For is believed only when the connection comes from a proxy on an internal address
 * (fly.io's edge, an nginx on the same host or network) or on one of `http.trustedproxies` (a CDN
 * in front, on public addresses), and then read from the right: each proxy appends the address it
 * saw, so the first entry from the right that is not itself such a proxy is the client. Everything
 * left of it is whatever the client sent, and anyone can send anything: taking the first entry
 * would let a client pick its address, and with it dodge the throttle or match an ACL's network.
 */
import { BlockList, isIP } from 'node:net'

const INTERNAL = new BlockList()
for (const [net, bits] of [['10.0.0.0', 8], ['172.16.0.0', 12], ['192.168.0.0', 16], ['127.0.0.0', 8], ['100.64.0.0', 10], ['169.254.0.0', 16]] as const) {
  INTERNAL.addSubnet(net, bits, 'ipv4')
}
for (const [net, bits] of [['::1', 128], ['fc00::', 7], ['fe80::', 10]] as const) INTERNAL.addSubnet(net, bits, 'ipv6')

/** Finds the client's address of a connection or request. */
export interface ClientAddresses {
  /** The address of the client behind `peer` (the socket's remote address) and its X-Forwarded-For. */
  of(peer: string | undefined, forwardedFor: string | undefined): string
  /** The client address of a request as the routes see it (Hono's context on @hono/node-server). */
  ofRequest(c: RequestLike): string
}

type RequestLike = { req: { header(name: string): string | undefined }; env?: { incoming?: { socket?: { remoteAddress?: string } } } }

/**
 * Addresses seen through proxies on internal addresses and on `trustedProxies` (addresses or
 * networks such as `203.0.113.0/24` or `2001:db8::/32`; `parseNetwork` checks them).
 */
export function clientAddresses(trustedProxies: readonly string[] = []): ClientAddresses {
  const trusted = new BlockList()
  for (const entry of trustedProxies) {
    const net = parseNetwork(entry)
    if (!net) throw new Error(`not an IP address or network: ${entry}`)
    trusted.addSubnet(net.address, net.bits, net.family)
  }
  const isProxy = (address: string): boolean => {
    const family = isIP(address)
    if (family === 0) return false
    const type = family === 4 ? 'ipv4' : 'ipv6'
    return INTERNAL.check(address, type) || (trustedProxies.length > 0 && trusted.check(address, type))
  }
  const of = (peer: string | undefined, forwardedFor: string | undefined): string => {
    const direct = plain(peer ?? '')
    if (!forwardedFor || !isProxy(direct)) return direct
    let nearest = direct
    const hops = forwardedFor.split(',')
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = plain(hops[i]!.trim())
      if (!isIP(hop)) break // not written by a proxy: the hop to its right is as far as we can trust
      nearest = hop
      if (!isProxy(hop)) break
    }
    return nearest
  }
  return {
    of,
    ofRequest: (c) => of(c.env?.incoming?.socket?.remoteAddress, c.req.header('x-forwarded-for')),
  }
}

const internalOnly = clientAddresses()

/** The address of the client behind `peer`, trusting proxies on internal addresses only. */
export const clientAddress = internalOnly.of

/** An IP address or a network in CIDR notation; undefined when it is neither. */
export function parseNetwork(entry: string): { address: string; bits: number; family: 'ipv4' | 'ipv6' } | undefined {
  const [address = '', bitsText, ...rest] = entry.trim().split('/')
  const family = isIP(address)
  if (family === 0 || rest.length > 0) return undefined
  const max = family === 4 ? 32 : 128
  const bits = bitsText === undefined ? max : /^\d{1,3}$/.test(bitsText) ? Number(bitsText) : NaN
  if (!(bits >= 0 && bits <= max)) return undefined
  return { address, bits, family: family === 4 ? 'ipv4' : 'ipv6' }
}

/** An address without port, brackets or the IPv4-mapped IPv6 prefix. */
function plain(address: string): string {
  let a = address
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(a)
  if (bracketed) a = bracketed[1]!
  else if (/^[\d.]+:\d+$/.test(a)) a = a.slice(0, a.lastIndexOf(':'))
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a)
  return mapped ? mapped[1]! : a
}
