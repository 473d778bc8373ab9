/**
 * @module The login throttle across `enlil serve --workers N`: one table for all workers, so the
 * limit is the same whatever the worker count, and a guesser gains nothing from connections that
 * land on different workers.
 *
 * The primary holds the table (a hub); workers talk to it over the cluster IPC channel. The hot
 * path stays local: every worker keeps a copy of the keys that have failures, which the primary
 * updates on every change, so a request with no credentials or valid ones never waits for the
 * primary. Only a failure is a round trip (the primary counts it and says how long to wait, which
 * the failure spends waiting anyway), and a success is reported, without waiting, only for a key
 * the copy lists.
 */
import cluster, { type Worker } from 'node:cluster'
import { createFailureTable, createLoginThrottle, delayAfter, type Failures, isCurrent, type LoginThrottle, MAX_KEYS, refuseWhenLocked } from './throttle.js'

const TYPE = 'enlil:throttle'
/** A primary that doesn't answer within this (it is stopping) leaves the worker to count alone. */
const ANSWER_MS = 2_000

/** From a worker to the primary. */
export type ToHub =
  | { type: typeof TYPE; op: 'hello' }
  | { type: typeof TYPE; op: 'failed'; key: string; id: number }
  | { type: typeof TYPE; op: 'succeeded'; key: string }

/** From the primary to a worker: the whole table (on hello), one entry, keys gone, a failure's count. */
export type FromHub =
  | { type: typeof TYPE; op: 'snapshot'; entries: [key: string, count: number, since: number][] }
  | { type: typeof TYPE; op: 'set'; key: string; count: number; since: number }
  | { type: typeof TYPE; op: 'forget'; keys: string[] }
  | { type: typeof TYPE; op: 'counted'; id: number; count: number }

/** The primary's table: counts what the workers report and tells all of them what changed. */
export function createThrottleHub(options: { broadcast(message: FromHub): void; now?: () => number; maxKeys?: number }) {
  const table = createFailureTable(options)
  const { broadcast } = options
  return {
    /** One worker's message; `reply` answers that worker alone, after the broadcasts it caused. */
    handle(message: ToHub, reply: (message: FromHub) => void): void {
      if (message.op === 'hello') {
        reply({ type: TYPE, op: 'snapshot', entries: [...table.entries()].map(([key, e]) => [key, e.count, e.since]) })
      } else if (message.op === 'failed') {
        const { entry, evicted } = table.record(message.key)
        if (evicted.length > 0) broadcast({ type: TYPE, op: 'forget', keys: evicted })
        broadcast({ type: TYPE, op: 'set', key: message.key, count: entry.count, since: entry.since })
        reply({ type: TYPE, op: 'counted', id: message.id, count: entry.count })
      } else if (message.op === 'succeeded') {
        if (table.forget(message.key)) broadcast({ type: TYPE, op: 'forget', keys: [message.key] })
      }
    },
    get size() {
      return table.size
    },
  }
}

/** A worker's line to the hub: `send` calls `failed` when the message could not go out. */
export interface HubChannel {
  send(message: ToHub, failed: () => void): void
  subscribe(listener: (message: FromHub) => void): void
}

/** A worker's throttle: checks against its copy of the hub's table; failures are counted by the hub. */
export function createWorkerThrottle(channel: HubChannel, options: { now?: () => number; maxKeys?: number } = {}): LoginThrottle {
  const now = options.now ?? Date.now
  const maxKeys = options.maxKeys ?? MAX_KEYS
  /** The hub's entries as last heard; as bounded as the hub's table, which reports every removal. */
  const copy = new Map<string, Failures>()
  const waiting = new Map<number, (count: number) => void>()
  let nextId = 0
  channel.subscribe((m) => {
    if (m.op === 'set') copy.set(m.key, { count: m.count, since: m.since })
    else if (m.op === 'forget') for (const key of m.keys) copy.delete(key)
    else if (m.op === 'counted') waiting.get(m.id)?.(m.count)
    else if (m.op === 'snapshot') {
      copy.clear()
      for (const [key, count, since] of m.entries) copy.set(key, { count, since })
    }
  })
  channel.send({ type: TYPE, op: 'hello' }, () => {})
  /** Without an answer from the hub: counted in the copy, so this worker at least throttles alone. */
  const countHere = (key: string): number => {
    const entry = copy.get(key)
    if (isCurrent(entry, now())) return ++entry.count
    if (copy.size < maxKeys || entry) copy.set(key, { count: 1, since: now() })
    return 1
  }
  return {
    check: (key) => refuseWhenLocked(copy.get(key), now()),
    async failed(key) {
      const id = ++nextId
      const count = await new Promise<number>((ok) => {
        const done = (n: number) => {
          if (!waiting.has(id)) return // answered already (a late error after the timeout)
          clearTimeout(timer)
          waiting.delete(id)
          ok(n)
        }
        const alone = () => { if (waiting.has(id)) done(countHere(key)) }
        const timer = setTimeout(alone, ANSWER_MS)
        waiting.set(id, done)
        channel.send({ type: TYPE, op: 'failed', key, id }, alone)
      })
      await new Promise((r) => setTimeout(r, delayAfter(count)))
    },
    succeeded(key) {
      if (copy.delete(key)) channel.send({ type: TYPE, op: 'succeeded', key }, () => {})
    },
  }
}

const isThrottleMessage = (m: unknown): boolean => typeof m === 'object' && m !== null && (m as { type?: unknown }).type === TYPE

let workerThrottle: LoginThrottle | undefined

/**
 * The login throttle for an auth mode: in a worker of `--workers N`, this worker's end of the
 * table the primary holds (one per process, whichever modes ask); else a table of its own.
 */
export function sharedLoginThrottle(): LoginThrottle {
  if (!cluster.isWorker) return createLoginThrottle()
  workerThrottle ??= createWorkerThrottle({
    send: (message, failed) => {
      try {
        process.send?.(message, (err) => { if (err) failed() })
      } catch {
        failed()
      }
    },
    subscribe: (listener) => process.on('message', (m: unknown) => { if (isThrottleMessage(m)) listener(m as FromHub) }),
  })
  return workerThrottle
}

let hubInstalled = false

/** In the primary of `--workers N`: holds the table and answers the workers. Call once. */
export function installThrottleHub(): void {
  if (hubInstalled) return
  hubInstalled = true
  const send = (worker: Worker, message: FromHub) => {
    if (!worker.isConnected()) return
    try {
      worker.send(message, () => {}) // a worker that is exiting misses it; its replacement says hello
    } catch {
      // the channel closed between the check and the send
    }
  }
  const hub = createThrottleHub({
    broadcast: (message) => {
      for (const worker of Object.values(cluster.workers ?? {})) if (worker) send(worker, message)
    },
  })
  cluster.on('message', (worker: Worker, m: unknown) => {
    if (isThrottleMessage(m)) hub.handle(m as ToHub, (reply) => send(worker, reply))
  })
}
