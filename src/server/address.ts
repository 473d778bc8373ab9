/** @module Listen addresses as configs write them (`host:port`, `:port`, `[::1]:port`); no dependencies, so commands that only need this load fast. */

export function splitAddr(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':')
  const host = addr.slice(0, i).replace(/^\[|\]$/g, '')
  return { host: host || '0.0.0.0', port: Number(addr.slice(i + 1)) }
}
