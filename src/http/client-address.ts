/**
 * @module The client's address, as login throttling and IP-based ACLs see it.
 *
 * X-Forwarded-For is believed only when the connection comes from a proxy on an internal address
 * (fly.io's edge, an nginx on the same host or network), and then read from the right: each proxy
 * appends the address it saw, so the first entry from the right that is not itself internal is
 * the client. Everything left of it is whatever the client sent, and anyone can send anything:
 * taking the first entry would let a client pick its address, and with it dodge the throttle or
 * match an ACL's network.
 */
import { BlockList, isIP } from 'node:net'

const INTERNAL = new BlockList()
for (const [net, bits] of [['10.0.0.0', 8], ['172.16.0.0', 12], ['192.168.0.0', 16], ['127.0.0.0', 8], ['100.64.0.0', 10], ['169.254.0.0', 16]] as const) {
  INTERNAL.addSubnet(net, bits, 'ipv4')
}
for (const [net, bits] of [['::1', 128], ['fc00::', 7], ['fe80::', 10]] as const) INTERNAL.addSubnet(net, bits, 'ipv6')

/** The address of the client behind `peer` (the socket's remote address) and its X-Forwarded-For. */
export function clientAddress(peer: string | undefined, forwardedFor: string | undefined): string {
  const direct = plain(peer ?? '')
  if (!forwardedFor || !isInternal(direct)) return direct
  let nearest = direct
  const hops = forwardedFor.split(',')
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = plain(hops[i]!.trim())
    if (!isIP(hop)) break // not written by a proxy: the hop to its right is as far as we can trust
    nearest = hop
    if (!isInternal(hop)) break
  }
  return nearest
}

/** The client address of a request as the routes see it (Hono's context on @hono/node-server). */
export function requestAddress(c: { req: { header(name: string): string | undefined }; env?: { incoming?: { socket?: { remoteAddress?: string } } } }): string {
  return clientAddress(c.env?.incoming?.socket?.remoteAddress, c.req.header('x-forwarded-for'))
}

function isInternal(address: string): boolean {
  const family = isIP(address)
  return family !== 0 && INTERNAL.check(address, family === 4 ? 'ipv4' : 'ipv6')
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
