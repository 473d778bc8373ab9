import { describe, expect, it } from 'vitest'
import { collect, Counter, Gauge, Histogram, PROMETHEUS_CONTENT_TYPE, snapshot, sumText } from './metrics.js'
import { routeTemplate } from '../http/access.js'
import { loadConfig } from '../config/load.js'
import { metricsSettings } from '../config/settings.js'

describe('metrics', () => {
  it('renders counters and cumulative histograms, summing the snapshots of several processes', async () => {
    const c = new Counter('t_requests_total', 'Requests.', ['route', 'status'])
    c.inc(['blob', '200'])
    c.inc(['blob', '200'], 2)
    c.inc(['say "hi"\n', '404'])
    const h = new Histogram('t_seconds', 'Latency.', ['route'], [0.1, 1])
    h.observe(0.05, ['blob'])
    h.observe(0.5, ['blob'])
    h.observe(5, ['blob'])
    const one = await collect()
    const text = await sumText([one, one])
    expect(text).toContain('# TYPE t_requests_total counter\n')
    expect(text).toContain('t_requests_total{route="blob",status="200"} 6\n')
    expect(text).toContain('t_requests_total{route="say \\"hi\\"\\n",status="404"} 2\n')
    expect(text).toContain('t_seconds_bucket{route="blob",le="0.1"} 2\nt_seconds_bucket{route="blob",le="1"} 4\nt_seconds_bucket{route="blob",le="+Inf"} 6\nt_seconds_sum{route="blob"} 11.1\nt_seconds_count{route="blob"} 6\n')
  })

  it("adds prom-client's process metrics, keeps the content type, and reads counters and gauges at once", async () => {
    const g = new Gauge('t_in_progress', 'Now.', [])
    g.add(1)
    g.add(-1)
    const text = await sumText([await collect()])
    expect(text).toMatch(/^t_in_progress 0$/m)
    expect(text).toContain('# TYPE nodejs_eventloop_lag_seconds gauge\n')
    expect(text).toContain('# TYPE process_cpu_user_seconds_total counter\n')
    expect(text).toContain('# HELP enlil_process_resident_memory_bytes Resident memory of the process(es).\n')
    expect(PROMETHEUS_CONTENT_TYPE).toBe('text/plain; version=0.0.4; charset=utf-8')
    const c = new Counter('t_events_total', 'Events.', ['endpoint', 'outcome'])
    c.inc(['down', 'dropped'], 3)
    expect((await snapshot()).find((f) => f.name === 't_events_total')!.series).toEqual([[['down', 'dropped'], 3]])
  })

  it('names routes by template, whatever the repository is called', () => {
    expect(routeTemplate('/v2/')).toBe('base')
    expect(routeTemplate('/v2/_catalog')).toBe('catalog')
    expect(routeTemplate('/v2/a/blobs/sha256:abc')).toBe('blob')
    expect(routeTemplate('/v2/blobs/manifests/x/blobs/uploads/')).toBe('upload')
    expect(routeTemplate('/v2/a/blobs/uploads/0b8c1c52-6e0e-4d7e-9a3b-1d2c3e4f5a6b')).toBe('upload')
    expect(routeTemplate('/v2/manifests/blobs/manifests/latest')).toBe('manifest')
    expect(routeTemplate('/v2/a/tags/list')).toBe('tags')
    expect(routeTemplate('/v2/a/referrers/sha256:abc')).toBe('referrers')
    expect(routeTemplate('/auth/token')).toBe('token')
    expect(routeTemplate('/healthz')).toBe('health')
    expect(routeTemplate('/nope')).toBe('other')
  })
})

describe('operations configuration', () => {
  it("accepts distribution's names for read-only, the debug listener and notifications", () => {
    const config = loadConfig({
      REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED: 'true',
      REGISTRY_HTTP_DEBUG_ADDR: '127.0.0.1:5001', REGISTRY_HTTP_DEBUG_PROMETHEUS_ENABLED: 'true',
    })
    expect(config.storage.maintenance.readonly.enabled).toBe(true)
    expect(metricsSettings(config)).toEqual({ addr: '127.0.0.1:5001', public: false, path: '/metrics' })
    const withEndpoints = loadConfig({}, undefined)
    expect(withEndpoints.notifications.endpoints).toEqual([])
    expect(metricsSettings(withEndpoints).addr).toBeUndefined()
  })

  it('reads quotas and endpoints from a file, and explains mistakes', async () => {
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs')
    const { join } = await import('node:path')
    const { tmpdir } = await import('node:os')
    const dir = mkdtempSync(join(tmpdir(), 'enlil-opscfg-'))
    try {
      const file = join(dir, 'c.yml')
      writeFileSync(file, [
        'quotas: { total: 10GiB, repositories: [{ match: "team-a/*", limit: 1GiB }] }',
        'notifications:',
        '  endpoints:',
        '    - { name: ci, url: "http://127.0.0.1:9000/hook", headers: { Authorization: [Bearer x] }, timeout: 2s, backoff: 1s, ignoredmediatypes: [application/octet-stream], ignore: { actions: [pull] } }',
      ].join('\n'))
      const config = loadConfig({}, file)
      expect(config.quotas).toMatchObject({ total: 10 * 1024 ** 3, repositories: [{ match: 'team-a/*', limit: 1024 ** 3 }], refresh: 60_000 })
      expect(config.notifications.endpoints[0]).toMatchObject({ name: 'ci', timeout: 2000, backoff: 1000, queuesize: 1000, ignore: { actions: ['pull'], mediatypes: [] } })
      writeFileSync(file, 'quotas: { total: lots }\n')
      expect(() => loadConfig({}, file)).toThrow(/quotas\.total: "lots" is not a size/)
      writeFileSync(file, 'http: { debug: { prometheus: { enabled: true } } }\n')
      expect(() => loadConfig({}, file)).toThrow(/http\.debug\.addr: required/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
