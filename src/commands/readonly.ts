/** @module `enlil readonly on|off|status`: the read-only marker every instance on the store follows. */
import type { StorageDriver } from '../storage/driver.js'
import { readMarker, setReadOnly } from '../registry/readonly.js'
import { loadConfig } from '../config/load.js'
import { createDriver } from '../server/storage.js'
import { defaultConfigFile, reportingConfigProblems } from './config-file.js'

/**
 * `enlil readonly on|off|status [CONFIG]`: writes or removes the marker object in the store that
 * every instance on it checks (within a few seconds), so one command switches them all.
 */
export function readOnlyCommand(args: string[]): Promise<number> {
  const configFor = (file: string | undefined) => loadConfig(process.env, file ?? defaultConfigFile())
  return reportingConfigProblems(() => switchReadOnly(args, (file) => createDriver(configFor(file)), (file) => configFor(file).storage.maintenance.readonly.enabled))
}

async function switchReadOnly(args: string[], loadDriver: (file: string | undefined) => Promise<StorageDriver>, configured: (file: string | undefined) => boolean): Promise<number> {
  const [action, ...rest] = args
  const reasonIndex = rest.indexOf('--reason')
  const reason = reasonIndex >= 0 ? rest[reasonIndex + 1] : undefined
  const file = rest.find((a, i) => !a.startsWith('-') && (reasonIndex < 0 || i !== reasonIndex + 1))
  if (action !== 'on' && action !== 'off' && action !== 'status') {
    console.error('usage: enlil readonly on|off|status [CONFIG.yml] [--reason TEXT]')
    return 2
  }
  const driver = await loadDriver(file)
  if (action !== 'status') await setReadOnly(driver, action === 'on', reason)
  const marker = await readMarker(driver)
  const byConfig = configured(file)
  const state = byConfig ? 'on (storage.maintenance.readonly.enabled in the configuration)' : marker ? `on since ${marker.since}${marker.reason ? `: ${marker.reason}` : ''}` : 'off'
  console.log(`read-only: ${state}`)
  if (action !== 'status') console.error('every instance on this store follows within a few seconds')
  if (action === 'off' && byConfig) console.error('note: the configuration keeps this instance read-only; change storage.maintenance.readonly.enabled')
  return 0
}
