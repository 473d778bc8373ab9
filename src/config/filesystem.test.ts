import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from './load.js'

describe('filesystem store configuration', () => {
  it('small file operations default to auto and fsync to on; the environment changes both', () => {
    expect(loadConfig({}).storage.filesystem).toEqual({ rootdirectory: './data', metadata: 'auto', fsync: true })
    expect(loadConfig({ ENLIL_STORAGE_FILESYSTEM_METADATA: 'async' }).storage.filesystem.metadata).toBe('async')
    expect(loadConfig({ ENLIL_STORAGE_FILESYSTEM_FSYNC: 'false' }).storage.filesystem.fsync).toBe(false)
  })

  it('an unknown mode names the choices', () => {
    let problems: string[] = []
    try {
      loadConfig({ ENLIL_STORAGE_FILESYSTEM_METADATA: 'fast' })
    } catch (err) {
      problems = (err as ConfigError).problems
    }
    expect(problems).toHaveLength(1)
    expect(problems[0]).toMatch(/storage\.filesystem\.metadata.*"auto".*"sync".*"async"/)
  })
})
