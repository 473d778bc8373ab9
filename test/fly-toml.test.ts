/**
 * fly.toml, read with a small reader of the TOML it uses (tables, arrays of tables, strings,
 * numbers, booleans): its environment plus the secrets `fly storage create` and the README's
 * `fly secrets set` give is a valid config, and its port and checks are what the image serves.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createApp } from '../src/server/app.js'
import { loadConfig } from '../src/config/load.js'
import { clientAddresses } from '../src/http/client-address.js'
import { silentLogger } from '../src/observe/log.js'
import { createRegistry } from '../src/registry/index.js'
import { createFilesystemDriver } from '../src/storage/filesystem.js'
import { removeDir, ROOT, tempDir } from './support/processes.js'

type Table = Record<string, unknown>

/** The subset of TOML fly.toml is written in; throws on anything else, so the test cannot pass by ignoring it. */
function readToml(text: string): Table {
  const root: Table = {}
  let current = root
  const descend = (path: string[], table: Table): Table => {
    let node = table
    for (const key of path) {
      const next = node[key]
      node = (Array.isArray(next) ? next.at(-1) : next ?? (node[key] = {})) as Table
    }
    return node
  }
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\s+#[^"]*$/, '').replace(/^#.*$/, '').trim()
    if (!line) return
    let m: RegExpExecArray | null
    if ((m = /^\[\[([\w.]+)\]\]$/.exec(line))) {
      const path = m[1]!.split('.')
      const parent = descend(path.slice(0, -1), root)
      const list = (parent[path.at(-1)!] ??= []) as Table[]
      list.push((current = {}))
    } else if ((m = /^\[([\w.]+)\]$/.exec(line))) {
      current = descend(m[1]!.split('.'), root)
    } else if ((m = /^([\w-]+)\s*=\s*(.+)$/.exec(line))) {
      const value = m[2]!
      if (/^"[^"]*"$/.test(value)) current[m[1]!] = value.slice(1, -1)
      else if (/^-?\d+$/.test(value)) current[m[1]!] = Number(value)
      else if (value === 'true' || value === 'false') current[m[1]!] = value === 'true'
      else throw new Error(`fly.toml:${i + 1}: value not understood: ${value}`)
    } else {
      throw new Error(`fly.toml:${i + 1}: line not understood: ${raw}`)
    }
  })
  return root
}

const fly = readToml(readFileSync(join(ROOT, 'fly.toml'), 'utf8'))
const env = fly.env as Record<string, string>
const service = fly.http_service as { internal_port: number; force_https: boolean; concurrency: { type: string; soft_limit: number; hard_limit: number }; checks: { path: string; method: string }[] }

/** What `fly storage create` sets, and the README's `fly secrets set` (fake values). */
const SECRETS = {
  BUCKET_NAME: 'delicate-sea-639',
  AWS_ACCESS_KEY_ID: 'tid_example',
  AWS_SECRET_ACCESS_KEY: 'tsec_example',
  AWS_ENDPOINT_URL_S3: 'https://fly.storage.tigris.dev',
  AWS_REGION: 'auto',
  JWT_KEY_B64: Buffer.from('-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----\n').toString('base64'),
  ENLIL_AUTH_TOKEN_USERS_B64: Buffer.from('users:\n  ci: {password: "$2b$10$..."}\n').toString('base64'),
}

describe('fly.toml', () => {
  it('builds the Dockerfile', () => {
    expect(fly.build).toEqual({ dockerfile: 'Dockerfile' })
    expect(readFileSync(join(ROOT, 'Dockerfile'), 'utf8')).toMatch(/^FROM /m)
  })

  it('with the Tigris and token secrets, configures enlil on Tigris with its own token service', () => {
    const config = loadConfig({ ...env, ...SECRETS })
    expect(config.storage.driver).toBe('s3')
    expect(config.storage.s3).toMatchObject({ bucket: 'delicate-sea-639', region: 'auto', regionendpoint: 'https://fly.storage.tigris.dev', accesskey: 'tid_example' })
    expect(config.auth.mode).toBe('token')
    expect(config.auth.token).toMatchObject({ signingkeyb64: SECRETS.JWT_KEY_B64, usersb64: SECRETS.ENLIL_AUTH_TOKEN_USERS_B64 })
  })

  it("believes fly's proxy about the client's address, and nobody else", () => {
    const config = loadConfig({ ...env, ...SECRETS })
    expect(config.http.trustedproxies).toEqual(['172.16.0.0/12'])
    const addresses = clientAddresses(config.http.trustedproxies)
    // Through fly's proxy: it appended the client to whatever the client sent.
    expect(addresses.of('172.19.4.2', '10.0.0.1, 198.51.100.9', '198.51.100.9')).toBe('198.51.100.9')
    expect(addresses.of('172.19.4.2', undefined, '198.51.100.9')).toBe('198.51.100.9')
    // Another machine on the private network (6PN) connecting directly is who it is.
    expect(addresses.of('fdaa:0:1:a7b::2', '198.51.100.9', '198.51.100.9')).toBe('fdaa:0:1:a7b::2')
  })

  it('without the accounts secret, says which setting is missing', () => {
    const { ENLIL_AUTH_TOKEN_USERS_B64: _, ...rest } = SECRETS
    expect(() => loadConfig({ ...env, ...rest })).toThrow(/auth\.token\.users: required with token auth/)
  })

  it("sends traffic to the image's port, over HTTPS only, counted per request", () => {
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')
    expect(dockerfile).toMatch(new RegExp(`^EXPOSE ${service.internal_port}$`, 'm'))
    expect(dockerfile).toContain(`REGISTRY_HTTP_ADDR=:${service.internal_port}`)
    expect(service.force_https).toBe(true)
    expect(service.concurrency.type).toBe('requests')
    expect(service.concurrency.soft_limit).toBeLessThan(service.concurrency.hard_limit)
  })

  it('checks paths that enlil answers with 200, without credentials', async () => {
    expect(service.checks.map((c) => c.path).sort()).toEqual(['/healthz', '/readyz'])
    const root = tempDir('fly-checks')
    try {
      const app = createApp({ registry: createRegistry(createFilesystemDriver(root)), log: silentLogger })
      for (const check of service.checks) {
        const res = await app.request(`http://localhost${check.path}`, { method: check.method })
        expect(res.status, check.path).toBe(200)
      }
    } finally {
      removeDir(root)
    }
  })

  it('gives each machine memory for its uploads', () => {
    const vm = (fly.vm as { memory: string }[])[0]!
    expect(Number.parseInt(vm.memory, 10)).toBeGreaterThanOrEqual(256)
  })
})
