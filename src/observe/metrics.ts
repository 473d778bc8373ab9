/**
 * @module Metrics: counter, gauge and histogram primitives, the registry's own metrics, and the
 * Prometheus text format. No dependency: the exposition format is a few lines of text.
 *
 * Each process counts its own; `snapshot()` gives plain JSON that the primary of `--workers N`
 * collects over IPC and `render()` sums, so a scrape sees the whole machine (metrics-cluster.ts).
 */

type Kind = 'counter' | 'gauge' | 'histogram'

interface HistogramValue { buckets: number[]; sum: number; count: number }

/** One metric family as plain data: what crosses the IPC channel and what `render` reads. */
export interface FamilySnapshot {
  name: string
  help: string
  type: Kind
  labelNames: string[]
  buckets?: number[]
  series: [string[], number | HistogramValue][]
}

interface Family {
  snapshot(): FamilySnapshot
}

const families: Family[] = []
/** Values read at scrape time (memory, ...), set by their owners. */
const collectors: (() => void)[] = []

/** Series are keyed by their label values joined with a byte that can't appear in them. */
const SEP = '\u0000'

abstract class Metric<V> implements Family {
  protected readonly series = new Map<string, { labels: string[]; value: V }>()
  constructor(readonly name: string, readonly help: string, readonly labelNames: string[]) {
    families.push(this)
  }

  protected entry(labels: readonly string[], initial: () => V): { labels: string[]; value: V } {
    const key = labels.length === 1 ? labels[0]! : labels.join(SEP)
    let e = this.series.get(key)
    if (!e) {
      e = { labels: [...labels], value: initial() }
      this.series.set(key, e)
    }
    return e
  }

  abstract snapshot(): FamilySnapshot
}

export class Counter extends Metric<number> {
  inc(labels: readonly string[] = [], n = 1): void {
    this.entry(labels, () => 0).value += n
  }

  snapshot(): FamilySnapshot {
    return { name: this.name, help: this.help, type: 'counter', labelNames: this.labelNames, series: [...this.series.values()].map((e) => [e.labels, e.value]) }
  }
}

export class Gauge extends Metric<number> {
  set(value: number, labels: readonly string[] = []): void {
    this.entry(labels, () => 0).value = value
  }

  add(n: number, labels: readonly string[] = []): void {
    this.entry(labels, () => 0).value += n
  }

  snapshot(): FamilySnapshot {
    return { name: this.name, help: this.help, type: 'gauge', labelNames: this.labelNames, series: [...this.series.values()].map((e) => [e.labels, e.value]) }
  }
}

export class Histogram extends Metric<HistogramValue> {
  constructor(name: string, help: string, labelNames: string[], readonly buckets: number[]) {
    super(name, help, labelNames)
  }

  observe(value: number, labels: readonly string[] = []): void {
    const v = this.entry(labels, () => ({ buckets: new Array<number>(this.buckets.length).fill(0), sum: 0, count: 0 })).value
    // Non-cumulative counts per bucket; render() accumulates them.
    let i = 0
    while (i < this.buckets.length && value > this.buckets[i]!) i++
    if (i < this.buckets.length) v.buckets[i]!++
    v.sum += value
    v.count++
  }

  snapshot(): FamilySnapshot {
    return {
      name: this.name, help: this.help, type: 'histogram', labelNames: this.labelNames, buckets: this.buckets,
      series: [...this.series.values()].map((e) => [e.labels, { ...e.value, buckets: [...e.value.buckets] }]),
    }
  }
}

/** The registry's metrics. Other modules record into these; the names are the public interface. */
export const metrics = {
  requests: new Counter('enlil_http_requests_total', 'HTTP requests by route template, method and status.', ['route', 'method', 'status']),
  requestSeconds: new Histogram('enlil_http_request_duration_seconds', 'Time from request to response end, by route template and method.', ['route', 'method'],
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300]),
  bytesIn: new Counter('enlil_http_request_bytes_total', 'Request body bytes received, by route template.', ['route']),
  bytesOut: new Counter('enlil_http_response_bytes_total', 'Response bytes sent (headers included), by route template.', ['route']),
  uploadsInProgress: new Gauge('enlil_uploads_in_progress', 'Upload requests (monolithic POST, PATCH, PUT with a body) streaming bytes right now.', []),
  storageErrors: new Counter('enlil_storage_errors_total', 'Storage failures answered to clients: full (ENOSPC, quota of the store), unavailable, other.', ['kind']),
  quotaRejections: new Counter('enlil_quota_rejections_total', 'Uploads and mounts refused because a configured quota would be exceeded.', ['quota']),
  gcRuns: new Counter('enlil_gc_runs_total', 'Garbage collection runs, by outcome.', ['outcome']),
  gcBytesFreed: new Counter('enlil_gc_bytes_freed_total', 'Bytes deleted by garbage collection.', []),
  events: new Counter('enlil_notifications_total', 'Webhook events by endpoint and outcome (sent, failed attempt, dropped).', ['endpoint', 'outcome']),
  residentMemory: new Gauge('enlil_process_resident_memory_bytes', 'Resident memory of the process(es).', []),
}

collectors.push(() => metrics.residentMemory.set(process.memoryUsage.rss()))

/** This process's metrics as plain data. */
export function snapshot(): FamilySnapshot[] {
  for (const collect of collectors) collect()
  return families.map((f) => f.snapshot())
}

/** Prometheus text exposition (version 0.0.4) of one or more snapshots, summed series by series. */
export function render(snapshots: FamilySnapshot[][]): string {
  const merged = new Map<string, FamilySnapshot & { bySeries: Map<string, [string[], number | HistogramValue]> }>()
  for (const snap of snapshots) {
    for (const family of snap) {
      let m = merged.get(family.name)
      if (!m) {
        m = { ...family, series: [], bySeries: new Map() }
        merged.set(family.name, m)
      }
      for (const [labels, value] of family.series) {
        const key = labels.join(SEP)
        const have = m.bySeries.get(key)
        if (!have) m.bySeries.set(key, [labels, typeof value === 'number' ? value : { ...value, buckets: [...value.buckets] }])
        else if (typeof value === 'number') have[1] = (have[1] as number) + value
        else {
          const h = have[1] as HistogramValue
          value.buckets.forEach((n, i) => { h.buckets[i] = (h.buckets[i] ?? 0) + n })
          h.sum += value.sum
          h.count += value.count
        }
      }
    }
  }
  const lines: string[] = []
  for (const family of merged.values()) {
    lines.push(`# HELP ${family.name} ${family.help}`, `# TYPE ${family.name} ${family.type}`)
    for (const [labels, value] of family.bySeries.values()) {
      const pairs = family.labelNames.map((n, i) => `${n}="${escapeLabel(labels[i] ?? '')}"`)
      if (typeof value === 'number') {
        lines.push(`${family.name}${braces(pairs)} ${formatNumber(value)}`)
        continue
      }
      let cumulative = 0
      family.buckets!.forEach((le, i) => {
        cumulative += value.buckets[i] ?? 0
        lines.push(`${family.name}_bucket${braces([...pairs, `le="${le}"`])} ${cumulative}`)
      })
      lines.push(`${family.name}_bucket${braces([...pairs, 'le="+Inf"'])} ${value.count}`)
      lines.push(`${family.name}_sum${braces(pairs)} ${formatNumber(value.sum)}`)
      lines.push(`${family.name}_count${braces(pairs)} ${value.count}`)
    }
  }
  return `${lines.join('\n')}\n`
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

function braces(pairs: string[]): string {
  return pairs.length === 0 ? '' : `{${pairs.join(',')}}`
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')
}

function formatNumber(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toPrecision(12).replace(/\.?0+$/, '')
}
