/**
 * @module The configuration reference: README.md's option table, rendered from the zod schema in
 * schema.ts (each option's `.meta` description, its default, the environment tables), so that the
 * README cannot drift from the code. `npm run docs:config` rewrites the table; doc.test.ts
 * fails when it differs or when an option has no description.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { z } from 'zod'
import { configSchema, duration, type OptionDoc, size } from './schema.js'
import { ENVIRONMENT, FALLBACK_ENVIRONMENT } from './environment.js'

export const TABLE_START = '<!-- config-table: generated from src/config/schema.ts by `npm run docs:config`; edit the schema, not this table -->'
export const TABLE_END = '<!-- /config-table -->'

export interface OptionRow {
  path: string
  environment: string
  default: string
  description: string | undefined
}

type Schema = z.core.$ZodType
const WRAPPERS = new Set(['default', 'prefault', 'optional', 'nullable', 'readonly'])

/** The schema and every wrapper inside it (default, optional…), outermost first. */
function layers(schema: Schema): Schema[] {
  const out = [schema]
  let def = schema._zod.def as { type: string; innerType?: Schema }
  while (WRAPPERS.has(def.type) && def.innerType) {
    out.push(def.innerType)
    def = def.innerType._zod.def as { type: string; innerType?: Schema }
  }
  return out
}

function docOf(chain: Schema[]): Partial<OptionDoc> {
  for (const s of chain) {
    const meta = z.globalRegistry.get(s) as Partial<OptionDoc> | undefined
    if (meta?.description) return meta
  }
  return {}
}

/** Every option of the schema (leaves: anything that is not a section), in schema order. */
export function configOptions(schema: Schema = configSchema): OptionRow[] {
  const rows: OptionRow[] = []
  const walk = (node: Schema, prefix: string) => {
    const shape = (node._zod.def as unknown as { shape: Record<string, Schema> }).shape
    for (const [key, child] of Object.entries(shape)) {
      const path = prefix ? `${prefix}.${key}` : key
      const chain = layers(child)
      const inner = chain.at(-1)!
      if (inner._zod.def.type === 'object') walk(inner, path)
      else rows.push(row(path, chain))
    }
  }
  walk(schema, '')
  return rows
}

function row(path: string, chain: Schema[]): OptionRow {
  const doc = docOf(chain)
  const names = Object.entries(ENVIRONMENT).filter(([, p]) => p === path).map(([n]) => `\`${n}\``)
  const fallbacks = Object.entries(FALLBACK_ENVIRONMENT).filter(([, p]) => p === path).map(([n]) => `\`${n}\``)
  let environment = names.join(', ')
  if (fallbacks.length > 0) environment += `, else ${fallbacks.join(', ')}`
  if (doc.envText) environment += environment ? `, ${doc.envText}` : doc.envText
  return { path, environment: environment || '(file only)', default: doc.defaultText ?? defaultOf(chain), description: doc.description }
}

/** The default as a user would write it: durations and sizes in their units. */
function defaultOf(chain: Schema[]): string {
  const at = chain.findIndex((s) => s._zod.def.type === 'default')
  if (at < 0) return '—'
  const value = (chain[at]!._zod.def as unknown as { defaultValue: unknown }).defaultValue
  const inner = chain[at + 1]
  if (typeof value === 'number' && inner === duration) return `\`${formatDuration(value)}\``
  if (typeof value === 'number' && inner === size) return `\`${formatSize(value)}\``
  if (value === '' || value === undefined) return '—'
  return `\`${typeof value === 'string' ? value : JSON.stringify(value)}\``
}

export function formatDuration(ms: number): string {
  for (const [n, unit] of [[3_600_000, 'h'], [60_000, 'm'], [1000, 's']] as const) if (ms > 0 && ms % n === 0) return `${ms / n}${unit}`
  return `${ms}ms`
}

export function formatSize(bytes: number): string {
  for (const [n, unit] of [[1024 ** 3, 'GiB'], [1024 ** 2, 'MiB'], [1024, 'KiB']] as const) if (bytes % n === 0) return `${bytes / n}${unit}`
  return String(bytes)
}

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ')

/** The markdown table, markers included. */
export function renderConfigTable(rows: OptionRow[] = configOptions()): string {
  return [
    TABLE_START,
    '| option | environment | default | meaning |',
    '|---|---|---|---|',
    ...rows.map((r) => `| \`${r.path}\` | ${cell(r.environment)} | ${cell(r.default)} | ${cell(r.description ?? '(undocumented)')} |`),
    TABLE_END,
  ].join('\n')
}

/** Options without a description, and environment names pointing at no option: both are mistakes. */
export function documentationProblems(rows: OptionRow[] = configOptions()): string[] {
  const paths = new Set(rows.map((r) => r.path))
  return [
    ...rows.filter((r) => !r.description).map((r) => `${r.path}: no description (add .meta(doc('…')) in src/config/schema.ts)`),
    ...Object.entries({ ...ENVIRONMENT, ...FALLBACK_ENVIRONMENT }).filter(([, p]) => !paths.has(p)).map(([n, p]) => `${n}: maps to ${p}, which is no option`),
  ]
}

/** The README with its table replaced; throws when the markers are missing. */
export function withTable(readme: string, table: string = renderConfigTable()): string {
  const start = readme.indexOf(TABLE_START)
  const end = readme.indexOf(TABLE_END)
  if (start < 0 || end < start) throw new Error('README.md has no config table markers')
  return readme.slice(0, start) + table + readme.slice(end + TABLE_END.length)
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const readmePath = fileURLToPath(new URL('../../README.md', import.meta.url))
  const problems = documentationProblems()
  for (const p of problems) console.error(`config-doc: ${p}`)
  const readme = readFileSync(readmePath, 'utf8')
  const updated = withTable(readme)
  if (updated !== readme) writeFileSync(readmePath, updated)
  console.error(`config-doc: README.md ${updated === readme ? 'was up to date' : 'updated'}`)
  process.exitCode = problems.length > 0 ? 1 : 0
}
