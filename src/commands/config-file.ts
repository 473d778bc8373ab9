/** @module What every command that reads a config shares: which file, and how its problems are printed. */
import { ConfigError } from '../config/load.js'
import { defaultConfigFile } from './program.js'

export { defaultConfigFile }

/** The first argument that is not an option, else the environment's file. */
export const configFileIn = (args: string[]) => args.find((a) => !a.startsWith('-')) ?? defaultConfigFile()

/** A bad configuration: one line per problem, and exit status 1. Other errors go on. */
export function configProblems(err: unknown): number {
  if (!(err instanceof ConfigError)) throw err
  for (const problem of err.problems) console.error(`enlil: config: ${problem}`)
  return 1
}

export async function reportingConfigProblems(command: () => Promise<number>): Promise<number> {
  return command().catch(configProblems)
}
