/** @module `enlil readonly on|off|status`: the read-only marker every instance on the store follows. */
import { readMarker, setReadOnly } from '../registry/readonly.js'
import { loadConfig } from '../config/load.js'
import { createDriver } from '../server/storage.js'
import { type Command, type CommandGroup, type Parsed, usageError, usageLine } from './cli.js'
import { CONFIG_OPTION, chosenConfigFile, reportingConfigProblems } from './config-file.js'

type Action = 'on' | 'off' | 'status'

function readonlyCommand(action: Action, summary: string, description: string): Command {
  const command: Command = {
    name: action,
    summary,
    usage: `[CONFIG.yml] [--config CONFIG.yml]${action === 'on' ? ' [--reason TEXT]' : ''}`,
    description,
    options: { config: CONFIG_OPTION, ...(action === 'on' ? { reason: { type: 'string', value: 'TEXT', description: 'why, shown by status (e.g. "disk migration")' } } : {}) },
    positionals: [0, 1],
    run: (parsed: Parsed) => {
      const chosen = chosenConfigFile(parsed)
      if ('problem' in chosen) return Promise.resolve(usageError(`readonly ${action}`, chosen.problem, usageLine(`readonly ${action}`, command)))
      return readOnlyCommand(action, chosen.file, parsed.options.reason as string | undefined)
    },
  }
  return command
}

const FOLLOW = 'Every instance on the store follows within a few seconds.'

export const readonlySpec: CommandGroup = {
  name: 'readonly',
  subcommands: [
    readonlyCommand('on', 'switch every instance on the store to read-only (pulls work, writes get 405)', `Writes the read-only marker into the configured store. ${FOLLOW}`),
    readonlyCommand('off', 'switch read-only off again', `Removes the read-only marker from the configured store. ${FOLLOW}\nstorage.maintenance.readonly.enabled in a configuration keeps that instance read-only.`),
    readonlyCommand('status', 'say whether the store is read-only, since when and why', 'Reads the read-only marker of the configured store.'),
  ],
}

/**
 * `enlil readonly on|off|status [CONFIG]`: writes or removes the marker object in the store that
 * every instance on it checks (within a few seconds), so one command switches them all.
 */
export function readOnlyCommand(action: Action, file: string | undefined, reason: string | undefined): Promise<number> {
  return reportingConfigProblems(async () => {
    const config = loadConfig(process.env, file)
    const driver = await createDriver(config)
    if (action !== 'status') await setReadOnly(driver, action === 'on', reason)
    const marker = await readMarker(driver)
    const byConfig = config.storage.maintenance.readonly.enabled
    const state = byConfig ? 'on (storage.maintenance.readonly.enabled in the configuration)' : marker ? `on since ${marker.since}${marker.reason ? `: ${marker.reason}` : ''}` : 'off'
    console.log(`read-only: ${state}`)
    if (action !== 'status') console.error('every instance on this store follows within a few seconds')
    if (action === 'off' && byConfig) console.error('note: the configuration keeps this instance read-only; change storage.maintenance.readonly.enabled')
    return 0
  })
}
