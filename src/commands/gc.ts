/**
 * @module `enlil gc [CONFIG] [--dry-run] [--delete-untagged] [--grace 1h]`: retention, then garbage
 * collection, on the configured store. What goes is listed on stdout; the store, progress and the
 * summary on stderr.
 */
import { existsSync } from 'node:fs'
import { ConfigError, loadConfig } from '../config/load.js'
import { type Config } from '../config/schema.js'
import { collectGarbage, formatSummary, type GcItem } from '../registry/gc.js'
import { createDriver } from '../server/storage.js'
import { storeDescription } from '../server/startup.js'
import { mirrorEviction, mirrorRetention } from '../server/mirror.js'

export interface GcArgs {
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
    case 'evicted': return `mirrored repository ${item.repo} (evicted from the cache)`
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
    const driver = await createDriver(config)
    const summary = await collectGarbage(driver, {
      graceMs: parsed.graceMs ?? config.gc.grace,
      dryRun: parsed.dryRun,
      deleteUntagged: parsed.deleteUntagged || config.gc.deleteuntagged,
      retention: config.retention,
      evict: mirrorEviction(config, driver),
      retentionApplies: mirrorRetention(config),
      progress: (line) => console.error(line),
      onDelete: (item) => console.log(`${verb} ${describe(item)}`),
    })
    console.error(formatSummary(summary))
    if (summary.repositories === 0) {
      const missing = config.storage.driver === 'filesystem' && !existsSync(config.storage.filesystem.rootdirectory)
      console.error(`enlil gc: warning: ${storeInWords(config)} ${missing ? 'does not exist' : 'holds no repositories'}. If enlil serves another store, `
        + 'give its config (enlil gc CONFIG.yml) or its environment; a relative folder is relative to where gc runs.')
    }
    return 0
  } catch (err) {
    // Blobs are deleted only after every repository was marked: a failed run leaves garbage, never a missing blob.
    console.error(`enlil gc: stopped: ${(err as Error).message}`)
    return 1
  }
}
