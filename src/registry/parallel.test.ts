import { describe, expect, it } from 'vitest'
import { forEachLimit, mapLimit } from './parallel.js'

describe('bounded walks', () => {
  it('keep order in mapLimit and never run more than the limit at once', async () => {
    let running = 0
    let most = 0
    const out = await mapLimit([...Array(50).keys()], 4, async (i) => {
      most = Math.max(most, ++running)
      await new Promise((resolve) => setTimeout(resolve, i % 3))
      running--
      return i * 2
    })
    expect(out).toEqual([...Array(50).keys()].map((i) => i * 2))
    expect(most).toBe(4)
  })

  it('a walk whose work answers synchronously still lets the event loop run', async () => {
    const order: string[] = []
    setImmediate(() => order.push('other work'))
    await forEachLimit([...Array(10_000).keys()], 8, async (i) => {
      if (i === 9_999) order.push('walk ended')
    })
    expect(order).toEqual(['other work', 'walk ended'])
  })

  it('the first failure rejects after the rest settled', async () => {
    const done: number[] = []
    await expect(forEachLimit([1, 2, 3], 3, async (i) => {
      if (i === 2) throw new Error('two failed')
      await new Promise((resolve) => setTimeout(resolve, 5))
      done.push(i)
    })).rejects.toThrow('two failed')
    expect(done.sort()).toEqual([1, 3])
  })
})
