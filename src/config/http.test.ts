import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from './load.js'

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env)
  } catch (err) {
    return (err as ConfigError).problems
  }
  return []
}

describe('http.trustedproxies', () => {
  it('is empty by default, and a comma-separated list in the environment', () => {
    expect(loadConfig({}).http.trustedproxies).toEqual([])
    expect(loadConfig({ ENLIL_HTTP_TRUSTEDPROXIES: '203.0.113.0/24, 2001:db8::/32,198.51.100.7' }).http.trustedproxies)
      .toEqual(['203.0.113.0/24', '2001:db8::/32', '198.51.100.7'])
  })

  it('names the entry that is not an address or network', () => {
    const problems = problemsOf({ ENLIL_HTTP_TRUSTEDPROXIES: '203.0.113.0/24,cdn.example.com' })
    expect(problems).toHaveLength(1)
    expect(problems[0]).toMatch(/http\.trustedproxies.*not an IP address or network.*cdn\.example\.com/)
  })
})
