import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { configOptions, documentationProblems, formatDuration, formatSize, renderConfigTable, TABLE_END, TABLE_START, withTable } from './doc.js'
import { duration, size } from './schema.js'

const README = new URL('../../README.md', import.meta.url)

describe('the configuration reference in README.md', () => {
  it('is the table generated from the schema (run `npm run docs:config` after changing src/config/schema.ts)', () => {
    const readme = readFileSync(README, 'utf8')
    const start = readme.indexOf(TABLE_START)
    const end = readme.indexOf(TABLE_END)
    expect(start, 'README.md has the config-table markers').toBeGreaterThan(0)
    expect(readme.slice(start, end + TABLE_END.length)).toBe(renderConfigTable())
  })

  it('describes every option, and every environment name maps to an option', () => {
    expect(documentationProblems()).toEqual([])
  })

  it('lists each option once with its environment names and default', () => {
    const rows = configOptions()
    expect(new Set(rows.map((r) => r.path)).size).toBe(rows.length)
    expect(rows.find((r) => r.path === 'storage.s3.bucket')).toMatchObject({ environment: '`REGISTRY_STORAGE_S3_BUCKET`, else `BUCKET_NAME`', default: '—' })
    expect(rows.find((r) => r.path === 'storage.maintenance.uploadpurging.age')).toMatchObject({ default: '`168h`' })
    expect(rows.find((r) => r.path === 'storage.s3.chunksize')).toMatchObject({ default: '`10MiB`' })
    expect(rows.find((r) => r.path === 'auth.acl')).toMatchObject({ environment: '(file only)' })
  })
})

describe('the generator on sections it has never seen', () => {
  // Another section added later needs descriptions only: the walk, defaults and units are generic.
  const schema = z.strictObject({
    gc: z.strictObject({
      interval: duration.default(90 * 60_000).meta({ description: 'how often' }),
      dryrun: z.boolean().default(false),
      quota: z.strictObject({ max: size.default(2 * 1024 ** 3).meta({ description: 'per repository' }) }).optional(),
    }).prefault({}),
  })

  it('renders nested options with their defaults, and reports the undocumented one', () => {
    const rows = configOptions(schema)
    expect(rows.map((r) => [r.path, r.default, r.description])).toEqual([
      ['gc.interval', '`90m`', 'how often'],
      ['gc.dryrun', '`false`', undefined],
      ['gc.quota.max', '`2GiB`', 'per repository'],
    ])
    expect(documentationProblems(rows).filter((p) => p.startsWith('gc.'))).toEqual(['gc.dryrun: no description (add .meta(doc(\'…\')) in src/config/schema.ts)'])
    expect(renderConfigTable(rows)).toContain('| `gc.dryrun` | (file only) | `false` | (undocumented) |')
  })

  it('replaces only what lies between the markers', () => {
    const readme = `# title\n\n${TABLE_START}\nold\n${TABLE_END}\n\nafter\n`
    expect(withTable(readme, `${TABLE_START}\nnew\n${TABLE_END}`)).toBe(`# title\n\n${TABLE_START}\nnew\n${TABLE_END}\n\nafter\n`)
    expect(() => withTable('no markers')).toThrow('markers')
  })

  it('writes durations and sizes in their largest whole unit', () => {
    expect([formatDuration(60_000), formatDuration(90_000), formatDuration(250), formatDuration(168 * 3_600_000)]).toEqual(['1m', '90s', '250ms', '168h'])
    expect([formatSize(4 * 1024 ** 2), formatSize(512 * 1024), formatSize(1000)]).toEqual(['4MiB', '512KiB', '1000'])
  })
})
