/**
 * Settings of one conformance run, read from the environment that run.mjs sets up
 * (the test files can also be run with vitest directly when CONFORMANCE_URL is set).
 */
import { randomBytes } from 'node:crypto'

/** The repository name grammar of the distribution spec ("Pulling manifests"). */
export const NAME_PATTERN = /^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$/

function env(name, fallback) {
  const value = process.env[name]
  return value === undefined || value === '' ? fallback : value
}

function newRunId() {
  // Lower-case base 36: valid as a path component of a repository name, sortable by time.
  return `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`
}

const url = env('CONFORMANCE_URL', '')
if (!url) {
  throw new Error('CONFORMANCE_URL is not set: run the suite with `npm run conformance -- --url http://host:port`')
}

export const config = {
  /** Base URL of the registry, without a trailing slash. */
  url: url.replace(/\/+$/, ''),
  namespace: env('CONFORMANCE_NAMESPACE', 'conformance/test'),
  crossmountNamespace: env('CONFORMANCE_CROSSMOUNT_NAMESPACE', 'conformance/crossmount'),
  username: env('CONFORMANCE_USERNAME', undefined),
  password: env('CONFORMANCE_PASSWORD', undefined),
  runId: env('CONFORMANCE_RUN_ID', newRunId()),
  debug: env('CONFORMANCE_DEBUG', '0') === '1',
}

for (const [key, value] of [['namespace', config.namespace], ['crossmount namespace', config.crossmountNamespace]]) {
  if (!NAME_PATTERN.test(value)) throw new Error(`the ${key} "${value}" is not a valid repository name`)
}

/**
 * A repository of this run: `<namespace>/<run-id>/<part>`, so that runs and test files never share
 * content, yet everything a run made sits under one prefix.
 */
export function repository(part, namespace = config.namespace) {
  return `${namespace}/${config.runId}/${part}`
}
