/** @module What every command that reads a config shares: which file, and how its problems are printed. */
import { ConfigError } from '../config/load.js'
import type { OptionSpec, Parsed } from './cli.js'

/** The config file named by the environment (REGISTRY_CONFIG, as distribution, or ENLIL_CONFIG). */
export const defaultConfigFile = () => process.env.REGISTRY_CONFIG || process.env.ENLIL_CONFIG || undefined

/** The first argument that is not an option, else the environment's file. */
export const configFileIn = (args: string[]) => args.find((a) => !a.startsWith('-')) ?? defaultConfigFile()

/** `--config FILE`, on every command that reads a config (the same as giving the file as the argument). */
export const CONFIG_OPTION: OptionSpec = { type: 'string', value: 'FILE', description: 'the config file, the same as giving it as the argument\n(default: REGISTRY_CONFIG or ENLIL_CONFIG, else none: defaults and the environment)' }

/**
 * The config file of a parsed command line: `--config` or the argument (one of them), else the
 * environment's. A string when both were given and differ: the problem, for the usage error.
 */
export function chosenConfigFile(parsed: Parsed, positional = 0): { file: string | undefined } | { problem: string } {
  const option = parsed.options.config as string | undefined
  const argument = parsed.positionals[positional]
  if (option !== undefined && argument !== undefined && option !== argument) return { problem: `two config files ("${argument}" and --config "${option}"): give one` }
  return { file: option ?? argument ?? defaultConfigFile() }
}

/** A bad configuration: one line per problem, and exit status 1. Other errors go on. */
export function configProblems(err: unknown): number {
  if (!(err instanceof ConfigError)) throw err
  for (const problem of err.problems) console.error(`enlil: config: ${problem}`)
  return 1
}

export async function reportingConfigProblems(command: () => Promise<number>): Promise<number> {
  return command().catch(configProblems)
}
