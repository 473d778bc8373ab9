/** Reads the JUnit XML that vitest's `junit` reporter writes: which tests passed, failed, were skipped. */
import { readFileSync } from 'node:fs'

function unescapeXml(s) {
  return s.replace(/&(lt|gt|quot|apos|amp|#(\d+)|#x([0-9a-f]+));/gi, (_, name, dec, hex) => {
    if (dec) return String.fromCodePoint(Number(dec))
    if (hex) return String.fromCodePoint(parseInt(hex, 16))
    return { lt: '<', gt: '>', quot: '"', apos: "'", amp: '&' }[name.toLowerCase()]
  })
}

function attribute(tag, name) {
  const m = new RegExp(`\\s${name}="([^"]*)"`).exec(tag)
  return m ? unescapeXml(m[1]) : ''
}

/**
 * Test names are the describe blocks and the test joined by " > " (e.g.
 * `push > end-5: …`); a failed beforeAll shows up as a failed entry named after its block.
 */
export function parseJUnit(xml) {
  const result = { passed: [], failed: [], skipped: [], failures: new Map() }
  const testcase = /<testcase\b([^>]*?)(\/>|>([\s\S]*?)<\/testcase>)/g
  let m
  while ((m = testcase.exec(xml)) !== null) {
    const name = attribute(m[1], 'name')
    const inner = m[3] ?? ''
    if (/<failure\b|<error\b/.test(inner)) {
      result.failed.push(name)
      const message = /<failure\b[^>]*\smessage="([^"]*)"/.exec(inner)
      result.failures.set(name, message ? unescapeXml(message[1]) : '')
    } else if (/<skipped\b/.test(inner)) {
      result.skipped.push(name)
    } else {
      result.passed.push(name)
    }
  }
  return result
}

export function readJUnit(path) {
  return parseJUnit(readFileSync(path, 'utf8'))
}
