/**
 * @module The client's address, as login throttling, IP-based ACLs and the access log see it.
 *
 * It is the connection's address, unless the connection comes from one of `http.trustedproxies`
 * (none by default). Only then is X-Forwarded-For believed, and read from the right: each proxy
 * appends the address it saw, so the first entry from the right that is not itself a trusted proxy
 * is the client. Everything left of it is whatever the client sent, and anyone can send anything:
 * taking the first entry would let a client pick its address, and with it dodge the throttle or
 * match an ACL's network. No address is trusted for being loopback or private: a client on the
 * same LAN or pod network, or an nginx that passes the client's own header through, would
 * otherwise choose its address.
 *
 * fly.io's proxy appends the client to X-Forwarded-For and also sends `Fly-Client-IP`; that header
 * is used only when a trusted peer sent no X-Forwarded-For at all, so a proxy of yours that passes
 * a client's `Fly-Client-IP` through does not let it choose its address while it sets X-Forwarded-For.
 */
import { BlockList, isIP } from 'node:net'

/** Finds the client's address of a connection or request. */
export interface ClientAddresses {
  /** The client behind `peer` (the socket's remote address), given its X-Forwarded-For and Fly-Client-IP headers. */
  of(peer: string | undefined, forwardedFor: string | undefined, flyClientIp?: string): string
  /** The client address of a request (Hono's context on @hono/node-server). */
  ofRequest(c: RequestLike): string
}

type RequestLike = { req: { header(name: string): string | undefined }; env?: { incoming?: { socket?: { remoteAddress?: string } } } }

/**
 * Addresses seen through the proxies on `trustedProxies` (addresses or networks such as
 * `127.0.0.1`, `172.16.0.0/12` or `2001:db8::/32`; `parseNetwork` checks them). None trusted:
 * every client is the connection's address.
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
    return family !== 0 && trusted.check(address, family === 4 ? 'ipv4' : 'ipv6')
  }
  const of = (peer: string | undefined, forwardedFor: string | undefined, flyClientIp?: string): string => {
    const direct = plain(peer ?? '')
    if (trustedProxies.length === 0 || !isProxy(direct)) return direct
    if (!forwardedFor) {
      const fly = plain(flyClientIp?.trim() ?? '')
      return isIP(fly) ? fly : direct
    }
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
    ofRequest: (c) => of(c.env?.incoming?.socket?.remoteAddress, c.req.header('x-forwarded-for'), c.req.header('fly-client-ip')),
  }
}

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
