/** Webhook events: what a receiver written for distribution's notifications gets from enlil. */
import { createServer, type Server } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createApp } from '../src/server/app.js'
import { silentLogger } from '../src/observe/log.js'
import { createNotifier, type EndpointConfig, EVENTS_MEDIA_TYPE, type RegistryEvent } from '../src/observe/notifications.js'
import { createRegistry } from '../src/registry/index.js'
import { snapshot } from '../src/observe/metrics.js'
import { createFilesystemDriver } from '../src/storage/filesystem.js'
import { imageManifest, OCI_MANIFEST, randomBlob } from './support/oci-client.js'
import { pushMonolithic } from './support/operations-suite.js'
import { removeDir, tempDir } from './support/processes.js'

interface Received { headers: Record<string, string | string[] | undefined>; events: RegistryEvent[] }

/** A receiver on 127.0.0.1 that answers 500 to the first `failures` deliveries of each path. */
function receiver(failures: Record<string, number> = {}) {
  const got: Record<string, Received[]> = {}
  const attempts: Record<string, number> = {}
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const path = req.url ?? '/'
      attempts[path] = (attempts[path] ?? 0) + 1
      if (attempts[path]! <= (failures[path] ?? 0)) return void res.writeHead(500).end()
      ;(got[path] ??= []).push({ headers: req.headers, events: (JSON.parse(Buffer.concat(chunks).toString()) as { events: RegistryEvent[] }).events })
      res.writeHead(200).end()
    })
  })
  return { server, got, attempts }
}

/** Waits (bounded) until `check` holds. */
async function eventually(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (check()) return
    await new Promise((r) => setTimeout(r, 25))
  }
  throw new Error(`timed out waiting for ${what}`)
}

const root = tempDir('events')
const rx = receiver({ '/flaky': 2 })
let url = ''
beforeAll(async () => {
  await new Promise<void>((ok) => rx.server.listen(0, '127.0.0.1', ok))
  url = `http://127.0.0.1:${(rx.server.address() as { port: number }).port}`
})
afterAll(async () => {
  rx.server.closeAllConnections()
  await new Promise((ok) => rx.server.close(ok))
  removeDir(root)
})

function appWith(endpoints: EndpointConfig[]) {
  const notifier = createNotifier(endpoints, { addr: 'test:5000' }, silentLogger)!
  const registry = createRegistry(createFilesystemDriver(root))
  return { app: createApp({ registry, log: silentLogger, notifier }), notifier }
}

describe('webhook events', () => {
  it('sends push, pull, mount and delete in distribution\'s envelope', async () => {
    const { app, notifier } = appWith([{ name: 'all', url: `${url}/all`, headers: { Authorization: ['Bearer hook-secret'] }, backoff: 10 }])
    const layer = randomBlob(500)
    const config = randomBlob(50)
    for (const b of [layer, config]) expect((await pushMonolithic(app, 'ev/app', b)).status).toBe(201)
    const manifest = imageManifest(config, [layer])
    const put = await app.request('http://registry.test/v2/ev/app/manifests/v1', { method: 'PUT', body: manifest, headers: { 'Content-Type': OCI_MANIFEST, 'User-Agent': 'test-client/1' } })
    const digest = put.headers.get('docker-content-digest')!
    expect((await app.request('http://registry.test/v2/ev/app/manifests/v1')).status).toBe(200)
    expect((await app.request('http://registry.test/v2/ev/app/manifests/v1', { method: 'HEAD' })).status).toBe(200)
    expect((await app.request(`http://registry.test/v2/ev/app/blobs/${layer.digest}`)).status).toBe(200)
    expect((await app.request(`http://registry.test/v2/ev/copy/blobs/uploads/?mount=${layer.digest}&from=ev/app`, { method: 'POST' })).status).toBe(201)
    expect((await app.request(`http://registry.test/v2/ev/app/manifests/${digest}`, { method: 'DELETE' })).status).toBe(202)

    await eventually(() => (rx.got['/all']?.length ?? 0) >= 7, '7 events')
    notifier.close()
    const deliveries = rx.got['/all']!
    expect(deliveries[0]!.headers['content-type']).toBe(EVENTS_MEDIA_TYPE)
    expect(deliveries[0]!.headers.authorization).toBe('Bearer hook-secret')
    const events = deliveries.flatMap((d) => d.events)
    expect(events.map((e) => `${e.action} ${e.target.repository} ${e.target.digest ?? e.target.tag}`)).toEqual([
      `push ev/app ${layer.digest}`,
      `push ev/app ${config.digest}`,
      `push ev/app ${digest}`,
      `pull ev/app ${digest}`, // the GET; HEAD sends none
      `pull ev/app ${layer.digest}`,
      `mount ev/copy ${layer.digest}`,
      `delete ev/app ${digest}`,
    ])
    const pushed = events[2]!
    expect(pushed.target).toEqual({
      mediaType: OCI_MANIFEST, size: manifest.length, length: manifest.length, digest, repository: 'ev/app', tag: 'v1',
      url: `http://registry.test/v2/ev/app/manifests/${digest}`,
    })
    expect(pushed.request).toMatchObject({ host: 'registry.test', method: 'PUT', useragent: 'test-client/1' })
    expect(pushed.source).toMatchObject({ addr: 'test:5000' })
    expect(pushed.id).toMatch(/^[0-9a-f-]{36}$/)
    expect(Number.isNaN(Date.parse(pushed.timestamp))).toBe(false)
    expect(events[5]!.target.fromRepository).toBe('ev/app')
    expect(new Set(events.map((e) => e.source.instanceID)).size).toBe(1)
  })

  it('retries a failing receiver with backoff until it takes the event', async () => {
    const { app, notifier } = appWith([{ name: 'flaky', url: `${url}/flaky`, backoff: 20, maxbackoff: 100 }])
    const blob = randomBlob(10)
    expect((await pushMonolithic(app, 'ev/flaky', blob)).status).toBe(201)
    await eventually(() => (rx.got['/flaky']?.length ?? 0) >= 1, 'the retried event')
    notifier.close()
    expect(rx.attempts['/flaky']).toBe(3)
    expect(rx.got['/flaky']!.map((d) => d.events[0]!.target.digest)).toEqual([blob.digest])
  })

  it('honours ignored actions and media types', async () => {
    const { app, notifier } = appWith([{ name: 'picky', url: `${url}/picky`, ignoredmediatypes: ['application/octet-stream'], ignore: { actions: ['pull'] } }])
    const layer = randomBlob(100)
    const config = randomBlob(10)
    for (const b of [layer, config]) expect((await pushMonolithic(app, 'ev/picky', b)).status).toBe(201)
    expect((await app.request(`http://localhost/v2/ev/picky/manifests/v1`, { method: 'PUT', body: imageManifest(config, [layer]), headers: { 'Content-Type': OCI_MANIFEST } })).status).toBe(201)
    expect((await app.request(`http://localhost/v2/ev/picky/manifests/v1`)).status).toBe(200)
    expect((await app.request(`http://localhost/v2/ev/picky/manifests/v1`, { method: 'DELETE' })).status).toBe(202)
    await eventually(() => (rx.got['/picky']?.length ?? 0) >= 2, 'two events')
    await new Promise((r) => setTimeout(r, 100)) // anything else would have arrived by now
    notifier.close()
    expect(rx.got['/picky']!.flatMap((d) => d.events).map((e) => `${e.action} ${e.target.tag ?? e.target.digest}`)).toEqual(['push v1', 'delete v1'])
  })

  it('drops the oldest events when a receiver is down and the queue is full', async () => {
    const { app, notifier } = appWith([{ name: 'down', url: 'http://127.0.0.1:9/nothing', queuesize: 2, backoff: 60_000 }])
    for (let i = 0; i < 5; i++) expect((await pushMonolithic(app, 'ev/down', randomBlob(10))).status).toBe(201)
    notifier.close()
    // The first went out and failed; each later one pushed the oldest out of the two-event queue.
    const dropped = (await snapshot()).find((f) => f.name === 'enlil_notifications_total')!.series.find(([labels]) => labels[0] === 'down' && labels[1] === 'dropped')
    expect(dropped?.[1]).toBe(3)
  })
})
