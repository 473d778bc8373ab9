/**
 * @module The command line: the tree of commands, their options read once (node:util's parseArgs),
 * `--help` on every command and group, and "did you mean" for a mistyped command or option.
 */
import { parseArgs } from 'node:util'

export interface OptionSpec {
  type: 'string' | 'boolean'
  short?: string
  /** A string option's placeholder in usage and help: FILE, N. */
  value?: string
  description: string
}

/** What a command gets: its options (absent when not given) and its other arguments. */
export interface Parsed {
  options: Record<string, string | boolean | undefined>
  positionals: string[]
}

export interface Command {
  name: string
  summary: string
  /** What follows `enlil <name>` in the usage line, e.g. `[CONFIG.yml] [--workers N]`. */
  usage: string
  /** The paragraphs of --help after the usage line. */
  description: string
  options?: Record<string, OptionSpec>
  /** How many arguments besides options it takes: [least, most]. */
  positionals: [number, number]
  run(parsed: Parsed): Promise<number>
}

export interface CommandGroup {
  name: string
  subcommands: Command[]
}

export type Entry = Command | CommandGroup

const isGroup = (entry: Entry): entry is CommandGroup => 'subcommands' in entry

const HELP: OptionSpec = { type: 'boolean', short: 'h', description: 'show this help' }

/** Damerau–Levenshtein distance (adjacent swaps count one), small strings only. */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)))
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1)
    }
  }
  return d[a.length]![b.length]!
}

/** The name the user most likely meant: a prefix of it (`gen` → `generate`), or one or two letters off. */
export function closest(input: string, names: string[]): string | undefined {
  const prefixed = input.length >= 2 ? names.filter((n) => n.startsWith(input)) : []
  if (prefixed.length === 1) return prefixed[0]
  const scored = names.map((n) => ({ n, d: distance(input, n) })).filter(({ n, d }) => d <= (Math.min(input.length, n.length) <= 4 ? 1 : 2))
  scored.sort((x, y) => x.d - y.d)
  return scored[0]?.n
}

const didYouMean = (input: string, names: string[]) => {
  const guess = closest(input, names)
  return guess ? `; did you mean "${guess}"?` : ''
}

const optionsOf = (command: Command): Record<string, OptionSpec> => ({ ...command.options, help: HELP })

function optionLine(name: string, spec: OptionSpec): [string, string] {
  const flag = `${spec.short ? `-${spec.short}, ` : '    '}--${name}${spec.type === 'string' ? ` ${spec.value ?? 'VALUE'}` : ''}`
  return [flag, spec.description]
}

/** Two columns, the second aligned (and wrapped lines indented under it). */
function columns(rows: [string, string][], indent = '  '): string {
  const width = Math.max(...rows.map(([left]) => left.length)) + 2
  return rows.map(([left, right]) => `${indent}${left.padEnd(width)}${right.replaceAll('\n', `\n${indent}${' '.repeat(width)}`)}`).join('\n')
}

export const usageLine = (path: string, command: Command) => `usage: enlil ${path}${command.usage ? ` ${command.usage}` : ''}`

export function commandHelp(path: string, command: Command): string {
  const rows = Object.entries(optionsOf(command)).map(([name, spec]) => optionLine(name, spec))
  return `${usageLine(path, command)}\n\n${command.description}\n\noptions:\n${columns(rows)}\n`
}

export function groupHelp(group: CommandGroup): string {
  const rows = group.subcommands.map((c): [string, string] => [`${group.name} ${c.name}`, c.summary])
  return `usage: enlil ${group.name} ${group.subcommands.map((c) => c.name).join('|')} ...\n\ncommands:\n${columns(rows)}\n\n`
    + `"enlil ${group.name} COMMAND --help" shows what a command takes.\n`
}

export function overview(entries: Entry[], preamble: string, epilogue: string): string {
  const rows = entries.flatMap((e): [string, string][] => isGroup(e) ? e.subcommands.map((c) => [`${e.name} ${c.name}`, c.summary]) : [[e.name, e.summary]])
  return `${preamble}\n\ncommands:\n${columns(rows)}\n\n${epilogue}\n`
}

/** A mistake on the command line: the message, the usage line, where more help is; exit status 2. */
export function usageError(path: string, message: string, usage: string): number {
  process.stderr.write(`enlil ${path}: ${message}\n${usage}\n("enlil ${path} --help" says more)\n`)
  return 2
}

/** Reads a command's arguments: every problem is a usage error, never a guess. */
export function parseCommandLine(path: string, command: Command, args: string[]): Parsed | 'help' | number {
  const specs = optionsOf(command)
  const { tokens, positionals } = parseArgs({
    args, strict: false, allowPositionals: true, tokens: true,
    options: Object.fromEntries(Object.entries(specs).map(([name, s]) => [name, { type: s.type, ...(s.short ? { short: s.short } : {}) }])),
  })
  const options: Parsed['options'] = {}
  const names = Object.keys(specs).map((n) => `--${n}`)
  const fail = (message: string) => usageError(path, message, usageLine(path, command))
  // --help anywhere wins: whatever else is on the line, the user asked what the command takes.
  if (tokens.some((t) => t.kind === 'option' && t.name === 'help')) return 'help'
  for (const token of tokens) {
    if (token.kind !== 'option') continue
    const spec = specs[token.name]
    if (!spec) return fail(`unknown option "${token.rawName}"${didYouMean(token.rawName, names)}`)
    if (spec.type === 'boolean') {
      if (token.value !== undefined) return fail(`${token.rawName} takes no value (got "${token.value}")`)
      options[token.name] = true
      continue
    }
    // parseArgs takes the next word even when it is another option: `--config --workers 2`.
    if (token.value === undefined || (!token.inlineValue && token.value.startsWith('-') && token.value.length > 1)) {
      return fail(`${token.rawName} needs a value${spec.value ? ` (${spec.value})` : ''}`)
    }
    if (options[token.name] !== undefined && options[token.name] !== token.value) return fail(`${token.rawName} is given twice`)
    options[token.name] = token.value
  }
  const [least, most] = command.positionals
  if (positionals.length < least) return fail(`missing argument${least - positionals.length > 1 ? 's' : ''}`)
  if (positionals.length > most) return fail(`unexpected argument "${positionals[most]}"`)
  return { options, positionals }
}

async function runCommand(path: string, command: Command, args: string[]): Promise<number> {
  const parsed = parseCommandLine(path, command, args)
  if (parsed === 'help') {
    process.stdout.write(commandHelp(path, command))
    return 0
  }
  if (typeof parsed === 'number') return parsed
  return command.run(parsed)
}

export interface Program {
  entries: Entry[]
  /** The first paragraph of `enlil --help`. */
  preamble: string
  /** The last paragraph of `enlil --help`. */
  epilogue: string
  version(): string
}

const isHelpFlag = (arg: string | undefined) => arg === '--help' || arg === '-h'

/** Runs the command the arguments name; resolves to an exit status (-1: serving, the process stays up). */
export async function runProgram(program: Program, argv: string[]): Promise<number> {
  const [first, ...rest] = argv
  const top = program.entries.map((e) => e.name)
  const find = (name: string | undefined) => program.entries.find((e) => e.name === name)
  if (first === undefined || isHelpFlag(first)) {
    process.stdout.write(overview(program.entries, program.preamble, program.epilogue))
    return 0
  }
  if (first === '--version' || first === 'version' || first === '-v' || first === '-V') {
    process.stdout.write(`${program.version()}\n`)
    return 0
  }
  // `enlil help [COMMAND [SUBCOMMAND]]` is `enlil COMMAND [SUBCOMMAND] --help`.
  if (first === 'help') return rest.length === 0 ? runProgram(program, ['--help']) : runProgram(program, [...rest, '--help'])
  const entry = find(first)
  if (!entry) {
    process.stderr.write(`enlil: unknown command "${first}"${didYouMean(first, [...top, 'version', 'help'])}\n`
      + `the commands: ${top.join(', ')}, version, help ("enlil --help" says what each does)\n`)
    return 2
  }
  if (!isGroup(entry)) return runCommand(entry.name, entry, rest)
  const [sub, ...subArgs] = rest
  if (sub === undefined || isHelpFlag(sub)) {
    const help = groupHelp(entry)
    if (sub === undefined) {
      process.stderr.write(`enlil ${entry.name}: which command?\n${help}`)
      return 2
    }
    process.stdout.write(help)
    return 0
  }
  const command = entry.subcommands.find((c) => c.name === sub)
  if (!command) {
    const names = entry.subcommands.map((c) => c.name)
    process.stderr.write(`enlil ${entry.name}: unknown command "${sub}"${didYouMean(sub, names)}\n`
      + `the ${entry.name} commands: ${names.join(', ')} ("enlil ${entry.name} --help" says what each does)\n`)
    return 2
  }
  return runCommand(`${entry.name} ${command.name}`, command, subArgs)
}
