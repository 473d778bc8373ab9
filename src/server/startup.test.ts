import { describe, expect, it } from 'vitest'
import { loadConfig } from '../config/load.js'
import { listenDescription } from './startup.js'

describe('where the startup line says enlil listens', () => {
  it.each([
    [':5000', 'http://localhost:5000', 'port 5000 on every interface'],
    ['0.0.0.0:5000', 'http://localhost:5000', 'port 5000 on every interface'],
    ['[::]:5000', 'http://localhost:5000', 'port 5000 on every interface'],
    ['127.0.0.1:5000', 'http://127.0.0.1:5000', '127.0.0.1:5000 only'],
    ['[::1]:5000', 'http://[::1]:5000', '[::1]:5000 only'],
  ])('%s: %s, %s', (addr, url, listen) => {
    expect(listenDescription(loadConfig({ REGISTRY_HTTP_ADDR: addr }), 5000)).toEqual({ url, listen })
  })
})
