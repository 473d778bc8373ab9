/**
 * @module `enlil gc [CONFIG] [--dry-run] [--delete-untagged] [--grace 1h]`: retention, then garbage
 * collection, on the configured store. What goes is listed on stdout; progress and the summary on stderr.
 */
import { ConfigError, loadConfig } from '../config/load.js'
import { parseDuration } from '../config/units.js'
import { type Config } from '../config/schema.js'
import { collectGarbage, formatSummary, type GcItem } from '../registry/gc.js'
import { createDriver } from '../server/storage.js'
import { mirrorEviction } from '../server/mirror.js'

export const GC_USAGE = 'usage: enlil gc [CONFIG.yml] [--config CONFIG.yml] [--dry-run] [--delete-untagged] [--grace 1h]'

interface GcArgs {
  file?: string
  dryRun: boolean
  deleteUntagged: boolean
  graceMs?: number
}

function parseArgs(args: string[], env: Record<string, string | undefined>): GcArgs | string {
  const out: GcArgs = { file: env.REGISTRY_CONFIG || env.ENLIL_CONFIG || undefined, dryRun: false, deleteUntagged: false }
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined]
    const value = () => inline ?? args[++i]
    if (flag === '--dry-run' || flag === '-n') out.dryRun = true
    else if (flag === '--delete-untagged' || flag === '-m') out.deleteUntagged = true
    else if (flag === '--config') out.file = value()
    else if (flag === '--grace') {
      const text = value()
      const ms = text === undefined ? undefined : parseDuration(text)
      if (ms === undefined) return `--grace needs a duration such as 1h, 30m or 90s (got "${text ?? ''}")`
      out.graceMs = ms
    } else if (!arg.startsWith('-')) out.file = arg
    else return `unknown option "${arg}"`
  }
  return out
}

function describe(item: GcItem): string {
  switch (item.kind) {
    case 'tag': return `tag ${item.repo}:${item.tag} (pushed ${item.pushedAt.toISOString()})`
    case 'manifest': return `manifest ${item.repo}@${item.digest}`
    case 'blob': return `blob ${item.digest} (${item.size} bytes)`
    case 'layer-link': return `layer link ${item.repo}@${item.digest}`
    case 'evicted': return `mirrored repository ${item.repo} (evicted from the cache)`
  }
}

export async function gcCommand(args: string[], env: Record<string, string | undefined> = process.env): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(`${GC_USAGE}\n\nApplies the retention policies, then deletes blobs no manifest reaches (older than the grace\nperiod) on the configured store. See README.md, "Garbage collection and retention".`)
    return 0
  }
  const parsed = parseArgs(args, env)
  if (typeof parsed === 'string') {
    console.error(`enlil gc: ${parsed}\n${GC_USAGE}`)
    return 2
  }
  let config: Config
  try {
    config = loadConfig(env, parsed.file)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    for (const problem of err.problems) console.error(`enlil: config: ${problem}`)
    return 1
  }
  const verb = parsed.dryRun ? 'would delete' : 'deleting'
  try {
    const driver = await createDriver(config)
    const summary = await collectGarbage(driver, {
      graceMs: parsed.graceMs ?? config.gc.grace,
      dryRun: parsed.dryRun,
      deleteUntagged: parsed.deleteUntagged || config.gc.deleteuntagged,
      retention: config.retention,
      evict: mirrorEviction(config, driver),
      progress: (line) => console.error(line),
      onDelete: (item) => console.log(`${verb} ${describe(item)}`),
    })
    console.error(formatSummary(summary))
    return 0
  } catch (err) {
    // Blobs are deleted only after every repository was marked: a failed run leaves garbage, never a missing blob.
    console.error(`enlil gc: stopped: ${(err as Error).message}`)
    return 1
  }
}
