import { describe, expect, it } from 'vitest'
import { isTigris } from './storage.js'

describe('the Tigris rename is on by default only on Tigris endpoints', () => {
  it('knows Tigris hosts, and nothing else', () => {
    for (const url of ['https://fly.storage.tigris.dev', 'https://t3.storage.dev', 'https://my-bucket.t3.storage.dev']) expect(isTigris(url)).toBe(true)
    for (const url of [undefined, 'http://127.0.0.1:9000', 'https://s3.amazonaws.com', 'https://tigris.dev.example.com', 'https://notstorage.dev', 'not a url']) expect(isTigris(url)).toBe(false)
  })
})
