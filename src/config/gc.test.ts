import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from './load.js'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

function fileWith(yaml: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'enlil-gc-config-')), 'config.yml')
  writeFileSync(file, yaml)
  return file
}

function problems(env: Record<string, string>, file?: string): string[] {
  try {
    loadConfig(env, file)
    return []
  } catch (err) {
    return (err as ConfigError).problems
  }
}

describe('gc and retention configuration', () => {
  it('defaults: one hour of grace, untagged manifests kept, no schedule, no policies', () => {
    const config = loadConfig({})
    expect(config.gc).toEqual({ grace: 3_600_000, deleteuntagged: false, schedule: { interval: 0 } })
    expect(config.retention).toEqual([])
  })

  it('reads the environment and retention policies from the file', () => {
    const file = fileWith([
      'retention:',
      '  - repositories: "ci/*"',
      '    tags: "pr-*"',
      '    olderthan: 14d',
      '  - repositories: "/apps/.+/"',
      '    keep: [latest, "/v[0-9]+.*/"]',
      '    keeplast: 10',
    ].join('\n'))
    const config = loadConfig({ ENLIL_GC_GRACE: '2s', ENLIL_GC_DELETEUNTAGGED: 'true', ENLIL_GC_SCHEDULE_INTERVAL: '24h' }, file)
    expect(config.gc).toEqual({ grace: 2000, deleteuntagged: true, schedule: { interval: 86_400_000 } })
    expect(config.retention).toEqual([
      { repositories: 'ci/*', tags: 'pr-*', keep: [], olderthan: 14 * 86_400_000 },
      { repositories: '/apps/.+/', keep: ['latest', '/v[0-9]+.*/'], keeplast: 10 },
    ])
  })

  it('says what is wrong with a policy', () => {
    expect(problems({}, fileWith('retention:\n  - repositories: "*"\n'))).toEqual([
      'retention.0: a retention policy needs keeplast, olderthan or both (else it removes nothing or everything)',
    ])
    expect(problems({}, fileWith('retention:\n  - repositories: "/(/"\n    keeplast: 1\n'))).toEqual(['retention.0.repositories: not a valid regular expression'])
    expect(problems({}, fileWith('retention:\n  - repositories: "*"\n    olderthan: soon\n'))[0]).toContain('retention.0.olderthan')
    expect(problems({ ENLIL_GC_GRACE: 'an hour' })[0]).toContain('gc.grace (from ENLIL_GC_GRACE)')
  })
})
