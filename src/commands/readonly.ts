/** @module `enlil readonly on|off|status`: the read-only marker every instance on the store follows. */
import { readMarker, setReadOnly } from '../registry/readonly.js'
import { loadConfig } from '../config/load.js'
import { createDriver } from '../server/storage.js'
import { reportingConfigProblems } from './config-file.js'

/**
 * `enlil readonly on|off|status [CONFIG]`: writes or removes the marker object in the store that
 * every instance on it checks (within a few seconds), so one command switches them all.
 */
export function readOnlyCommand(action: 'on' | 'off' | 'status', file: string | undefined, reason: string | undefined): Promise<number> {
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
