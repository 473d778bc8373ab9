/**
 * @module Metrics across `--workers N`: each worker counts its own; a scrape, wherever it lands,
 * sums all of them. The primary asks every worker for its metrics over the cluster IPC channel and
 * prom-client aggregates them; a worker serving /metrics on the public port asks the primary for
 * the summed text.
 *
 * prom-client's `AggregatorRegistry.clusterMetrics()` would do the asking, but one worker that
 * doesn't answer (starting, dying) fails the whole scrape after 5 s, and it leaves the primary's
 * own metrics out. So the asking is ours, bounded per worker, and the aggregation is prom-client's.
 */
import cluster, { type Worker } from 'node:cluster'
import { createServer, type Server } from 'node:http'
import type { Logger } from './log.js'
import { collect, type ProcessMetrics, PROMETHEUS_CONTENT_TYPE, sumText } from './metrics.js'

const COLLECT = 'enlil:metrics:collect'
const SNAPSHOT = 'enlil:metrics:snapshot'
const GATHER = 'enlil:metrics:gather'
const TEXT = 'enlil:metrics:text'
/** A worker that doesn't answer within this is left out of the scrape (it may be starting or dying). */
const ANSWER_MS = 2_000

interface Message { type?: string; id?: number; metrics?: ProcessMetrics; text?: string }

let nextId = 0
const waiting = new Map<number, (m: Message) => void>()
let installed = false

/** Installs the IPC handlers of this process's role; call once per process. */
export function installClusterMetrics(): void {
  if (installed) return
  installed = true
  if (cluster.isWorker) {
    process.on('message', (m: Message) => {
      // A failing collect callback answers with no metrics rather than making the primary wait.
      if (m?.type === COLLECT) void collect().catch((): ProcessMetrics => []).then((metrics) => process.send?.({ type: SNAPSHOT, id: m.id, metrics }))
      else if (m?.type === TEXT && m.id !== undefined) waiting.get(m.id)?.(m)
    })
    return
  }
  cluster.on('message', (worker: Worker, m: Message) => {
    if (m?.type === SNAPSHOT && m.id !== undefined) waiting.get(m.id)?.(m)
    // Without text the worker serves its own metrics: better than nothing, and no rejection left unhandled here.
    else if (m?.type === GATHER) void gatherFromWorkers().catch(() => undefined).then((text) => worker.send({ type: TEXT, id: m.id, text }))
  })
}

/** Sends a request and waits for its answer, or `undefined` after ANSWER_MS. */
function ask(send: (id: number) => void): Promise<Message | undefined> {
  const id = ++nextId
  return new Promise((ok) => {
    const timer = setTimeout(() => { waiting.delete(id); ok(undefined) }, ANSWER_MS)
    waiting.set(id, (m) => { clearTimeout(timer); waiting.delete(id); ok(m) })
    send(id)
  })
}

async function gatherFromWorkers(): Promise<string> {
  const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && w.isConnected())
  const answers = await Promise.all(workers.map((w) => ask((id) => w.send({ type: COLLECT, id }))))
  return sumText([await collect(), ...answers.flatMap((m) => (m?.metrics ? [m.metrics] : []))])
}

/** The Prometheus text for this machine: this process alone, or every worker summed. */
export async function metricsText(): Promise<string> {
  if (cluster.isWorker) return (await ask((id) => process.send?.({ type: GATHER, id })))?.text ?? ownText()
  if (Object.keys(cluster.workers ?? {}).length > 0) return gatherFromWorkers()
  return ownText()
}

async function ownText(): Promise<string> {
  return sumText([await collect()])
}

/** A listener of its own for metrics (metrics.addr / http.debug.addr): GET <path> only. */
export async function startMetricsServer(host: string, port: number, path: string, log: Logger): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0]
    if ((req.method !== 'GET' && req.method !== 'HEAD') || url !== path) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end(`metrics are at ${path}\n`)
      return
    }
    metricsText().then((text) => {
      res.writeHead(200, { 'Content-Type': PROMETHEUS_CONTENT_TYPE }).end(req.method === 'HEAD' ? undefined : text)
    }, (err: unknown) => {
      log.warn('metrics scrape failed', { err })
      res.writeHead(500).end()
    })
  })
  await new Promise<void>((ok, fail) => {
    server.once('error', fail)
    server.listen(port, host, () => { server.off('error', fail); ok() })
  })
  const bound = (server.address() as { port: number }).port
  return {
    url: `http://${host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host}:${bound}${path}`,
    close: () => new Promise<void>((ok) => { server.close(() => ok()); server.closeAllConnections() }),
  }
}
