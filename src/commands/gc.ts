/**
 * @module `enlil gc [CONFIG] [--dry-run] [--delete-untagged] [--grace 1h]`: retention, then garbage
 * collection, on the configured store. What goes is listed on stdout; the store, progress and the
 * summary on stderr.
 */
import { ConfigError, loadConfig } from '../config/load.js'
import { parseDuration } from '../config/units.js'
import { type Config } from '../config/schema.js'
import { collectGarbage, formatSummary, type GcItem } from '../registry/gc.js'
import { createDriver } from '../server/storage.js'
import { storeDescription } from '../server/startup.js'
import { type Command, usageError, usageLine } from './cli.js'
import { CONFIG_OPTION, chosenConfigFile } from './config-file.js'

export const gcSpec: Command = {
  name: 'gc',
  summary: 'retention policies, then garbage collection, on the configured store',
  usage: '[CONFIG.yml] [--config CONFIG.yml] [--dry-run] [--delete-untagged] [--grace 1h]',
  description: `Applies the retention policies, then deletes the blobs no manifest reaches (older than the grace
period) on the store the configuration names, while enlil serves it. What goes is listed on
stdout; the store it looked at, progress and a summary on stderr. A relative folder
(storage.filesystem.rootdirectory, ./data by default) is relative to where you run it.
See README.md, "Garbage collection and retention".`,
  options: {
    config: CONFIG_OPTION,
    'dry-run': { type: 'boolean', short: 'n', description: 'list what would go, and how many bytes; delete nothing' },
    'delete-untagged': { type: 'boolean', short: 'm', description: 'also manifests no tag reaches (gc.deleteuntagged)' },
    grace: { type: 'string', value: 'DURATION', description: 'keep what was written less than this long ago, e.g. 1h, 30m\n(default gc.grace, 1h)' },
  },
  positionals: [0, 1],
  run: (parsed) => {
    const fail = (message: string) => Promise.resolve(usageError('gc', message, usageLine('gc', gcSpec)))
    const chosen = chosenConfigFile(parsed)
    if ('problem' in chosen) return fail(chosen.problem)
    const grace = parsed.options.grace as string | undefined
    const graceMs = grace === undefined ? undefined : parseDuration(grace)
    if (grace !== undefined && graceMs === undefined) return fail(`--grace needs a duration such as 1h, 30m or 90s (got "${grace}")`)
    return gcCommand({ file: chosen.file, dryRun: Boolean(parsed.options['dry-run']), deleteUntagged: Boolean(parsed.options['delete-untagged']), graceMs })
  },
}

interface GcArgs {
  file?: string
  dryRun: boolean
  deleteUntagged: boolean
  graceMs?: number
}

function describe(item: GcItem): string {
  switch (item.kind) {
    case 'tag': return `tag ${item.repo}:${item.tag} (pushed ${item.pushedAt.toISOString()})`
    case 'manifest': return `manifest ${item.repo}@${item.digest}`
    case 'blob': return `blob ${item.digest} (${item.size} bytes)`
    case 'layer-link': return `layer link ${item.repo}@${item.digest}`
  }
}

/** The store in words: which folder or bucket a run looked at, so a wrong one is seen. */
function storeInWords(config: Config): string {
  const store = storeDescription(config)
  if (store.storage === 'filesystem') return `the folder ${String(store.root)}`
  return `the bucket ${String(store.bucket)} at ${String(store.endpoint)}${store.prefix ? `, under ${String(store.prefix)}` : ''}`
}

export async function gcCommand(parsed: GcArgs, env: Record<string, string | undefined> = process.env): Promise<number> {
  let config: Config
  try {
    config = loadConfig(env, parsed.file)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    for (const problem of err.problems) console.error(`enlil: config: ${problem}`)
    return 1
  }
  const verb = parsed.dryRun ? 'would delete' : 'deleting'
  console.error(`enlil gc: store: ${storeInWords(config)}${parsed.file ? ` (config ${parsed.file})` : ''}`)
  try {
    const summary = await collectGarbage(await createDriver(config), {
      graceMs: parsed.graceMs ?? config.gc.grace,
      dryRun: parsed.dryRun,
      deleteUntagged: parsed.deleteUntagged || config.gc.deleteuntagged,
      retention: config.retention,
      progress: (line) => console.error(line),
      onDelete: (item) => console.log(`${verb} ${describe(item)}`),
    })
    console.error(formatSummary(summary))
    if (summary.repositories === 0) {
      console.error(`enlil gc: warning: ${storeInWords(config)} holds no repositories. If enlil serves another store, `
        + 'give its config (enlil gc CONFIG.yml) or its environment; a relative folder is relative to where gc runs.')
    }
    return 0
  } catch (err) {
    // Blobs are deleted only after every repository was marked: a failed run leaves garbage, never a missing blob.
    console.error(`enlil gc: stopped: ${(err as Error).message}`)
    return 1
  }
}
