/**
 * @module Every command of `enlil`: names, usage, options and help, checked before anything runs.
 * The implementations are loaded only for the command that runs, so that `--help` and
 * `enlil healthcheck` (the image's HEALTHCHECK, every few seconds) start in a fraction of a second.
 */
import { parseDuration } from '../config/units.js'
import { type Command, type CommandGroup, type OptionSpec, type Parsed, type Program, usageError, usageLine } from './cli.js'

/** The config file named by the environment (REGISTRY_CONFIG, as distribution, or ENLIL_CONFIG). */
export const defaultConfigFile = () => process.env.REGISTRY_CONFIG || process.env.ENLIL_CONFIG || undefined

/** `--config FILE`, on every command that reads a config (the same as giving the file as the argument). */
const CONFIG_OPTION: OptionSpec = { type: 'string', value: 'FILE', description: 'the config file, the same as giving it as the argument\n(default: REGISTRY_CONFIG or ENLIL_CONFIG, else none: defaults and the environment)' }

/** The config file of a command line: `--config` or the argument (not two different ones), else the environment's. */
function chosenConfigFile(parsed: Parsed): { file: string | undefined } | { problem: string } {
  const option = parsed.options.config as string | undefined
  const argument = parsed.positionals[0]
  if (option !== undefined && argument !== undefined && option !== argument) return { problem: `two config files ("${argument}" and --config "${option}"): give one` }
  return { file: option ?? argument ?? defaultConfigFile() }
}

/** A command's own checks of its arguments, beyond what the option table says: a usage error (exit 2). */
const refuse = (path: string, command: Command, message: string) => Promise.resolve(usageError(path, message, usageLine(path, command)))

const serve: Command = {
  name: 'serve',
  summary: 'serve the registry (what npm start runs)',
  usage: '[CONFIG.yml] [--config CONFIG.yml] [--workers N]',
  description: `Serves the OCI distribution API. Configuration: defaults, then the optional YAML or JSON
file, then the environment (REGISTRY_HTTP_ADDR, REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY, ...:
the table in README.md, "Running it"). The first line of the log says where it listens, which
config file and store it uses, and the auth mode.
SIGTERM or Ctrl-C: stop accepting, let in-flight requests finish (http.draintimeout, 1m by
default), then exit; a second SIGTERM or Ctrl-C stops at once.`,
  options: {
    config: CONFIG_OPTION,
    workers: { type: 'string', value: 'N', description: 'processes sharing the port: a number (1 serves in this process),\nor auto, one per core (the default; also ENLIL_WORKERS)' },
  },
  positionals: [0, 1],
  run: async (parsed) => {
    const chosen = chosenConfigFile(parsed)
    if ('problem' in chosen) return refuse('serve', serve, chosen.problem)
    const workers = parsed.options.workers as string | undefined
    if (workers !== undefined && !/^(auto|\d+)$/.test(workers)) return refuse('serve', serve, `--workers takes a number of processes, or auto (got "${workers}")`)
    return (await import('./serve.js')).serveCommand(chosen.file, workers)
  },
}

const configCheck: Command = {
  name: 'check',
  summary: 'validate a configuration; print the effective settings, secrets masked',
  usage: '[CONFIG.yml] [--config CONFIG.yml]',
  description: `Reads the configuration as enlil serve would (defaults, then the file, then the environment),
prints the effective settings as JSON on stdout with secrets masked, and says on stderr whether
it is valid: exit 0, or 1 with one line per problem.`,
  options: { config: CONFIG_OPTION },
  positionals: [0, 1],
  run: async (parsed) => {
    const chosen = chosenConfigFile(parsed)
    if ('problem' in chosen) return refuse('config check', configCheck, chosen.problem)
    return (await import('./config.js')).configCheck(chosen.file ? [chosen.file] : [])
  },
}

const configConvert: Command = {
  name: 'convert',
  summary: "distribution's config.yml, docker_auth's auth_config.yml or a .env → an enlil config",
  usage: '[--distribution config.yml] [--auth auth_config.yml] [--env .env] [--out enlil.yml] [--force]',
  description: `Converts distribution's config.yml and/or docker_auth's auth_config.yml, or an .env file in
open-balena's naming (REGISTRY_TOKEN_AUTH_*), into an enlil config (stdout, or --out; its folder
is created) and, from docker_auth, a users file next to it; notes on stderr say what did not carry
over. See README.md, "Migrating".`,
  options: {
    distribution: { type: 'string', value: 'FILE', description: "distribution's config.yml" },
    auth: { type: 'string', value: 'FILE', description: "docker_auth's auth_config.yml (its users go to users.yml beside --out)" },
    env: { type: 'string', value: 'FILE', description: 'an .env file in open-balena\'s naming (REGISTRY_TOKEN_AUTH_CERT, …)' },
    out: { type: 'string', value: 'FILE', description: 'write the enlil config there (default: stdout)' },
    force: { type: 'boolean', description: 'overwrite files that exist' },
  },
  positionals: [0, 0],
  run: async ({ options }) => {
    const { distribution, auth, env, out } = options as Record<string, string | undefined>
    if (!distribution && !auth && !env) return refuse('config convert', configConvert, 'give --distribution, --auth (or both), or --env')
    return (await import('./config.js')).configConvert({ distribution, auth, env, out, force: Boolean(options.force) })
  },
}

const usersAdd: Command = {
  name: 'add',
  summary: 'add an account to an htpasswd file, or change its password',
  usage: 'NAME --file HTPASSWD',
  description: `Writes NAME with a bcrypt hash of its password into the htpasswd file (created, readable by
its owner only), replacing NAME's old entry. The password is the first line of stdin, or asked
for on a terminal; at least 8 characters. The file serves auth.htpasswd.path and
auth.token.users.`,
  options: { file: { type: 'string', value: 'HTPASSWD', description: 'the htpasswd file (required)' } },
  positionals: [1, 1],
  run: async ({ options, positionals }) => {
    const name = positionals[0]!
    const file = options.file as string | undefined
    if (!file) return refuse('users add', usersAdd, '--file HTPASSWD is required')
    if (!/^[^:\s]+$/.test(name)) return refuse('users add', usersAdd, `a user name has no ":" or spaces (got "${name}")`)
    return (await import('./users.js')).usersAdd(name, file)
  },
}

const KEY_TYPES = ['ec', 'rsa', 'ed25519']

const keysGenerate: Command = {
  name: 'generate',
  summary: 'write a new token signing key (PEM) to stdout',
  usage: '[--type ec|rsa|ed25519] > token.pem',
  description: `Writes a new private key for signing tokens (auth.token.signingkey, or base64-encoded in
JWT_KEY_B64) as PEM to stdout, and its algorithm and key id to stderr. Every instance that issues
or checks tokens needs the same key.`,
  options: { type: { type: 'string', value: 'TYPE', description: 'ec (P-256, ES256; the default), rsa (3072 bits, RS256) or ed25519 (EdDSA)' } },
  positionals: [0, 0],
  run: async ({ options }) => {
    const type = (options.type as string | undefined) ?? 'ec'
    if (!KEY_TYPES.includes(type)) return refuse('keys generate', keysGenerate, `--type is ec, rsa or ed25519 (got "${type}")`)
    return (await import('./keys.js')).keysGenerate(type)
  },
}

const healthcheck: Command = {
  name: 'healthcheck',
  summary: "exit 0 when this machine's enlil answers /healthz (the image's HEALTHCHECK)",
  usage: '[CONFIG.yml] [--config CONFIG.yml]',
  description: `Asks /healthz of the enlil this configuration describes, on this machine (a wildcard
http.addr is asked on 127.0.0.1), and exits 0 when it answers 200 within 4 s, else 1 with the
reason on stderr. The image's HEALTHCHECK runs it: slim images have no curl.`,
  options: { config: CONFIG_OPTION },
  positionals: [0, 1],
  run: async (parsed) => {
    const chosen = chosenConfigFile(parsed)
    if ('problem' in chosen) return refuse('healthcheck', healthcheck, chosen.problem)
    return (await import('./healthcheck.js')).healthcheckCommand(chosen.file)
  },
}

function readonly(action: 'on' | 'off' | 'status', summary: string, description: string): Command {
  const path = `readonly ${action}`
  const command: Command = {
    name: action,
    summary,
    usage: `[CONFIG.yml] [--config CONFIG.yml]${action === 'on' ? ' [--reason TEXT]' : ''}`,
    description,
    options: { config: CONFIG_OPTION, ...(action === 'on' ? { reason: { type: 'string', value: 'TEXT', description: 'why, shown by status (e.g. "disk migration")' } } : {}) },
    positionals: [0, 1],
    run: async (parsed) => {
      const chosen = chosenConfigFile(parsed)
      if ('problem' in chosen) return refuse(path, command, chosen.problem)
      return (await import('./readonly.js')).readOnlyCommand(action, chosen.file, parsed.options.reason as string | undefined)
    },
  }
  return command
}

const FOLLOW = 'Every instance on the store follows within a few seconds.'

const gc: Command = {
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
  run: async (parsed) => {
    const chosen = chosenConfigFile(parsed)
    if ('problem' in chosen) return refuse('gc', gc, chosen.problem)
    const grace = parsed.options.grace as string | undefined
    const graceMs = grace === undefined ? undefined : parseDuration(grace)
    if (grace !== undefined && graceMs === undefined) return refuse('gc', gc, `--grace needs a duration such as 1h, 30m or 90s (got "${grace}")`)
    return (await import('./gc.js')).gcCommand({ file: chosen.file, dryRun: Boolean(parsed.options['dry-run']), deleteUntagged: Boolean(parsed.options['delete-untagged']), graceMs })
  },
}

const configGroup: CommandGroup = { name: 'config', subcommands: [configCheck, configConvert] }
const usersGroup: CommandGroup = { name: 'users', subcommands: [usersAdd] }
const keysGroup: CommandGroup = { name: 'keys', subcommands: [keysGenerate] }
const readonlyGroup: CommandGroup = {
  name: 'readonly',
  subcommands: [
    readonly('on', 'switch every instance on the store to read-only (pulls work, writes get 405)', `Writes the read-only marker into the configured store. ${FOLLOW}`),
    readonly('off', 'switch read-only off again', `Removes the read-only marker from the configured store. ${FOLLOW}\nstorage.maintenance.readonly.enabled in a configuration keeps that instance read-only.`),
    readonly('status', 'say whether the store is read-only, since when and why', 'Reads the read-only marker of the configured store.'),
  ],
}

export function enlilProgram(version: () => string): Program {
  return {
    entries: [serve, configGroup, usersGroup, keysGroup, healthcheck, readonlyGroup, gc],
    preamble: `usage: enlil COMMAND [ARGUMENTS]

enlil serves the OCI distribution API (docker, podman, skopeo, ctr push and pull to it), with its
store in a folder or an S3 bucket.`,
    epilogue: `"enlil COMMAND --help" shows what a command takes; "enlil --version" the version.
Configuration: defaults, then the optional YAML/JSON file (the argument, --config, or
REGISTRY_CONFIG / ENLIL_CONFIG), then the environment (REGISTRY_HTTP_ADDR,
REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY, ...: README.md, "Running it").`,
    version,
  }
}
