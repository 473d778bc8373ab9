import { describe, expect, it, vi } from 'vitest'
import { RegistryError } from '../oci/errors.js'
import { createLoginThrottle } from './throttle.js'

describe('login throttle', () => {
  it('locks a source out with 429 after 10 failures in a minute, others unaffected, then lets it back', async () => {
    let clock = 1_000_000
    const throttle = createLoginThrottle(() => clock)
    for (let i = 0; i < 10; i++) {
      throttle.check('10.0.0.1')
      void throttle.failed('10.0.0.1') // the delay is the caller's wait; not awaited here
    }
    let error: unknown
    try {
      throttle.check('10.0.0.1')
    } catch (err) {
      error = err
    }
    expect(error).toBeInstanceOf(RegistryError)
    expect((error as RegistryError).code).toBe('TOOMANYREQUESTS')
    expect((error as RegistryError).response.headers?.['Retry-After']).toBe('60')
    expect(() => throttle.check('10.0.0.2')).not.toThrow()
    clock += 61_000
    expect(() => throttle.check('10.0.0.1')).not.toThrow()
  })

  it('makes each failure wait longer (50 ms, then 100 ms…), and a success forgets them', async () => {
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
})
