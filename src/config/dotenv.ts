/**
 * @module A `.env` file (docker compose's `env_file`, `fly secrets import`): `NAME=value` lines,
 * optional `export `, `#` comments, values in single quotes (as written), double quotes (`\n`
 * escapes) or bare (a ` #` starts a comment). Later lines win.
 */
export function parseDotenv(text: string): Record<string, string> {
  const vars: Record<string, string> = {}
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(.*)$/.exec(line)
    if (!m) continue
    const [, name, rest] = m as unknown as [string, string, string]
    let value: string
    if (rest.startsWith('"')) {
      const end = rest.indexOf('"', 1)
      value = (end < 0 ? rest.slice(1) : rest.slice(1, end)).replace(/\\n/g, '\n').replace(/\\"/g, '"')
    } else if (rest.startsWith("'")) {
      const end = rest.indexOf("'", 1)
      value = end < 0 ? rest.slice(1) : rest.slice(1, end)
    } else {
      value = rest.replace(/\s+#.*$/, '').trim()
    }
    vars[name] = value
  }
  return vars
}
