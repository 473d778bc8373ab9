import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { RegistryError } from '../oci/errors.js'
import { createThrottleHub, createWorkerThrottle, type FromHub, type HubChannel, type ToHub } from './throttle-cluster.js'

/** A hub and `n` workers joined by in-memory channels that deliver in order, asynchronously, as IPC does. */
function cluster(n: number, options: { maxKeys?: number } = {}) {
  const listeners: ((m: FromHub) => void)[] = []
  const toHub: ToHub[] = []
  const deliver = (to: number, m: FromHub) => queueMicrotask(() => listeners[to]!(structuredClone(m)))
  const hub = createThrottleHub({ ...options, broadcast: (m) => listeners.forEach((_, i) => deliver(i, m)) })
  const workers = Array.from({ length: n }, (_, i) => {
    const channel: HubChannel = {
      send: (m) => {
        toHub.push(m)
        queueMicrotask(() => hub.handle(structuredClone(m), (reply) => deliver(i, reply)))
      },
      subscribe: (listener) => { listeners[i] = listener },
    }
    return createWorkerThrottle(channel, options)
  })
  return { hub, workers, toHub }
}

const locked = (run: () => void) => {
  try {
    run()
    return false
  } catch (err) {
    if (err instanceof RegistryError && err.code === 'TOOMANYREQUESTS') return true
    throw err
  }
}

describe('the login throttle shared by workers', () => {
  beforeEach(() => { vi.useFakeTimers() })
  afterEach(() => { vi.useRealTimers() })

  it('locks out after 10 failures in all, whichever workers saw them, on every worker', async () => {
    const { workers: [a, b, c] } = cluster(3)
    for (let i = 0; i < 10; i++) {
      const worker = [a, b][i % 2]!
      expect(locked(() => worker.check('198.51.100.9 alice')), `failure ${i + 1}`).toBe(false)
      const waited = worker.failed('198.51.100.9 alice')
      await vi.runAllTimersAsync()
      await waited
    }
    for (const worker of [a, b, c]) {
      expect(locked(() => worker!.check('198.51.100.9 alice'))).toBe(true)
      expect(locked(() => worker!.check('198.51.100.9 bob'))).toBe(false)
      expect(locked(() => worker!.check('198.51.100.10 alice'))).toBe(false)
    }
  })

  it('waits as long as one process would: the hub counts, the worker waits', async () => {
    const { workers: [a, b] } = cluster(2)
    let done = false
    void a!.failed('k')
    await vi.advanceTimersByTimeAsync(50)
    const second = b!.failed('k').then(() => { done = true })
    await vi.advanceTimersByTimeAsync(99)
    expect(done).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    await second
    expect(done).toBe(true)
  })

  it('sends nothing for requests without failures; a success elsewhere forgets the failures everywhere', async () => {
    const { workers: [a, b], toHub } = cluster(2)
    await vi.runAllTimersAsync()
    const hellos = toHub.length
    for (let i = 0; i < 100; i++) {
      a!.check('198.51.100.9 alice')
      a!.succeeded('198.51.100.9 alice')
    }
    expect(toHub.length).toBe(hellos)
    for (let i = 0; i < 9; i++) void a!.failed('198.51.100.9 alice')
    await vi.runAllTimersAsync()
    b!.succeeded('198.51.100.9 alice')
    expect(toHub.at(-1)).toMatchObject({ op: 'succeeded', key: '198.51.100.9 alice' })
    await vi.runAllTimersAsync()
    void a!.failed('198.51.100.9 alice')
    await vi.runAllTimersAsync()
    expect(locked(() => a!.check('198.51.100.9 alice'))).toBe(false)
  })

  it('gives a worker that starts later the current lock-outs', async () => {
    const first = cluster(1)
    for (let i = 0; i < 10; i++) void first.workers[0]!.failed('k')
    await vi.runAllTimersAsync()
    // A second worker on the same hub: it says hello and gets the table.
    let listener: ((m: FromHub) => void) | undefined
    const late = createWorkerThrottle({
      send: (m) => queueMicrotask(() => first.hub.handle(m, (reply) => queueMicrotask(() => listener!(reply)))),
      subscribe: (l) => { listener = l },
    })
    await vi.runAllTimersAsync()
    expect(locked(() => late.check('k'))).toBe(true)
  })

  it('keeps the workers\' copies as bounded as the hub\'s table', async () => {
    const { hub, workers: [a] } = cluster(1, { maxKeys: 50 })
    for (let i = 0; i < 10; i++) void a!.failed('locked')
    for (let i = 0; i < 500; i++) void a!.failed(`sprayed ${i}`)
    await vi.runAllTimersAsync()
    expect(hub.size).toBe(50)
    expect(locked(() => a!.check('locked'))).toBe(true)
    expect(locked(() => a!.check('sprayed 0'))).toBe(false)
  })

  it('counts alone when the primary does not answer', async () => {
    const throttle = createWorkerThrottle({ send: () => {}, subscribe: () => {} })
    for (let i = 0; i < 10; i++) void throttle.failed('k')
    await vi.runAllTimersAsync()
    expect(locked(() => throttle.check('k'))).toBe(true)
  })
})
