import { describe, expect, it, vi } from 'vitest'
import { RegistryError } from '../oci/errors.js'
import { createFailureTable, createLoginThrottle, delayAfter, loginKey } from './throttle.js'

const basic = (credentials: string) => `Basic ${Buffer.from(credentials).toString('base64')}`

function refusal(run: () => void): RegistryError | undefined {
  try {
    run()
  } catch (err) {
    if (err instanceof RegistryError) return err
    throw err
  }
  return undefined
}

describe('loginKey', () => {
  it('is the account named in Basic credentials, verified or not, with the address', () => {
    expect(loginKey(basic('alice:wrong'), '198.51.100.9')).toBe('198.51.100.9 alice')
    expect(loginKey(basic('no-such-user:x'), '198.51.100.9')).toBe('198.51.100.9 no-such-user')
    expect(loginKey(`basic ${Buffer.from('alice:a:b').toString('base64')}`, '::1')).toBe('::1 alice')
    expect(loginKey(basic(':password'), '198.51.100.9')).toBe('198.51.100.9 ')
    expect(loginKey(basic('alice:x'), '198.51.100.9')).not.toBe(loginKey(basic('alice:x'), '198.51.100.10'))
    expect(loginKey(basic(`${'a'.repeat(10_000)}:x`), '1.2.3.4')!.length).toBeLessThan(300)
  })

  it('is undefined without credentials: anonymous requests are never throttled', () => {
    expect(loginKey(undefined, '198.51.100.9')).toBeUndefined()
    expect(loginKey('Basic Og==', '198.51.100.9')).toBeUndefined()
    expect(loginKey('Bearer abc', '198.51.100.9')).toBeUndefined()
    expect(loginKey('', '198.51.100.9')).toBeUndefined()
  })
})

describe('login throttle', () => {
  it('locks a key out with 429 after 10 failures in a minute, others unaffected, then lets it back', async () => {
    vi.useFakeTimers()
    try {
      let clock = 1_000_000
      const throttle = createLoginThrottle({ now: () => clock })
      for (let i = 0; i < 10; i++) {
        expect(refusal(() => throttle.check('10.0.0.1 alice'))).toBeUndefined()
        void throttle.failed('10.0.0.1 alice') // the delay is the caller's wait; not awaited here
      }
      const error = refusal(() => throttle.check('10.0.0.1 alice'))
      expect(error?.code).toBe('TOOMANYREQUESTS')
      expect(error?.response.headers?.['Retry-After']).toBe('60')
      expect(error?.message).toMatch(/this account from this address/)
      // Another account from the same address, and the same account from elsewhere, log in.
      expect(refusal(() => throttle.check('10.0.0.1 bob'))).toBeUndefined()
      expect(refusal(() => throttle.check('10.0.0.2 alice'))).toBeUndefined()
      clock += 30_000
      expect(refusal(() => throttle.check('10.0.0.1 alice'))?.response.headers?.['Retry-After']).toBe('30')
      clock += 31_000
      expect(refusal(() => throttle.check('10.0.0.1 alice'))).toBeUndefined()
    } finally {
      vi.useRealTimers()
    }
  })

  it('makes each failure wait longer (50 ms, then 100 ms… at most 2 s), and a success forgets them', async () => {
    expect([1, 2, 3, 6, 7, 10, 40].map(delayAfter)).toEqual([50, 100, 200, 1600, 2000, 2000, 2000])
    vi.useFakeTimers()
    try {
      const throttle = createLoginThrottle()
      let done = false
      void throttle.failed('a')
      const second = throttle.failed('a').then(() => { done = true })
      await vi.advanceTimersByTimeAsync(99)
      expect(done).toBe(false)
      await vi.advanceTimersByTimeAsync(1)
      await second
      expect(done).toBe(true)
      for (let i = 0; i < 8; i++) void throttle.failed('a')
      expect(() => throttle.check('a')).toThrow(RegistryError)
      throttle.succeeded('a')
      expect(() => throttle.check('a')).not.toThrow()
    } finally {
      vi.useRealTimers()
    }
  })

  it('is never cleared whole: spraying new keys cannot lift a lock-out', async () => {
    vi.useFakeTimers()
    try {
      const clock = 1_000_000
      const throttle = createLoginThrottle({ now: () => clock, maxKeys: 100 })
      for (let i = 0; i < 10; i++) void throttle.failed('victim-of-a-guess alice')
      for (let i = 0; i < 1_000; i++) void throttle.failed(`198.51.100.${i} sprayed`)
      expect(refusal(() => throttle.check('victim-of-a-guess alice'))?.code).toBe('TOOMANYREQUESTS')
    } finally {
      vi.useRealTimers()
    }
  })
})

describe('the failure table', () => {
  it('makes room by dropping expired entries first, then the oldest not locked out, and says which', () => {
    let clock = 0
    const table = createFailureTable({ now: () => clock, maxKeys: 3 })
    table.record('old')
    clock = 10_000
    for (let i = 0; i < 10; i++) table.record('locked')
    table.record('fresh')
    clock = 65_000 // 'old' has expired
    expect(table.record('new').evicted).toEqual(['old'])
    expect(table.record('newer').evicted).toEqual(['fresh'])
    expect([...table.entries()].map(([k]) => k)).toEqual(['locked', 'new', 'newer'])
    expect(table.get('locked')?.count).toBe(10)
  })

  it('when every entry is a lock-out, drops the oldest (the one nearest its end)', () => {
    let clock = 0
    const table = createFailureTable({ now: () => clock, maxKeys: 2 })
    for (let i = 0; i < 10; i++) table.record('a')
    clock = 1_000
    for (let i = 0; i < 10; i++) table.record('b')
    expect(table.record('c').evicted).toEqual(['a'])
    expect(table.size).toBe(2)
  })

  it('starts a new window after a minute, at the end of the order', () => {
    let clock = 0
    const table = createFailureTable({ now: () => clock })
    table.record('a')
    table.record('b')
    clock = 61_000
    expect(table.record('a').entry).toEqual({ count: 1, since: 61_000 })
    expect([...table.entries()].map(([k]) => k)).toEqual(['b', 'a'])
    expect(table.forget('a')).toBe(true)
    expect(table.forget('a')).toBe(false)
  })
})
