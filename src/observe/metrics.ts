/**
 * @module Metrics: the registry's own metrics and Node's process metrics, on prom-client.
 *
 * Callers pass label values in label order (`metrics.requests.inc([route, method, status])`); a thin
 * facade turns them into prom-client's label objects, so a call site stays one short line and the
 * label names live only here. Each process counts its own; `collect()` is prom-client's JSON, which
 * the primary of `--workers N` gathers over IPC and `sumText()` aggregates (metrics-cluster.ts).
 */
import {
  AggregatorRegistry, collectDefaultMetrics, Counter as PromCounter, Gauge as PromGauge, Histogram as PromHistogram,
  type LabelValues, Registry,
} from 'prom-client'

/**
 * enlil's own registry, not prom-client's global one: metrics a dependency registers globally are
 * not exported by accident and can't clash with ours on a name.
 */
const registry = new Registry()

/** prom-client's text format 0.0.4: 'text/plain; version=0.0.4; charset=utf-8', as served before. */
export const PROMETHEUS_CONTENT_TYPE: string = registry.contentType

/** The JSON of one process's metrics: what a worker sends the primary. */
export type ProcessMetrics = Awaited<ReturnType<Registry['getMetricsAsJSON']>>

/** A counter or gauge as plain data: label values in label order, and the value. */
export interface FamilySnapshot {
  name: string
  type: 'counter' | 'gauge'
  labelNames: string[]
  series: [string[], number][]
}

/** Counters and gauges, for `snapshot()`. */
const families: { snapshot(): Promise<FamilySnapshot> }[] = []

function labelObject(names: readonly string[], values: readonly string[]): LabelValues<string> {
  const labels: Record<string, string> = {}
  for (let i = 0; i < names.length; i++) labels[names[i]!] = values[i] ?? ''
  return labels
}

/** The series of a prom-client counter or gauge, as label values in label order. */
async function seriesOf(metric: PromCounter<string> | PromGauge<string>, labelNames: readonly string[]): Promise<[string[], number][]> {
  return (await metric.get()).values.map((v) => [labelNames.map((n) => String(v.labels[n] ?? '')), v.value])
}

export class Counter {
  readonly #metric: PromCounter<string>
  constructor(readonly name: string, help: string, readonly labelNames: string[]) {
    this.#metric = new PromCounter({ name, help, labelNames, registers: [registry] })
    families.push(this)
  }

  inc(labels: readonly string[] = [], n = 1): void {
    this.#metric.inc(labelObject(this.labelNames, labels), n)
  }

  async snapshot(): Promise<FamilySnapshot> {
    return { name: this.name, type: 'counter', labelNames: this.labelNames, series: await seriesOf(this.#metric, this.labelNames) }
  }
}

export class Gauge {
  readonly #metric: PromGauge<string>
  /** `read`, for a gauge without labels: its value, taken at each scrape. */
  constructor(readonly name: string, help: string, readonly labelNames: string[], read?: () => number) {
    this.#metric = new PromGauge({ name, help, labelNames, registers: [registry], ...(read ? { collect() { this.set(read()) } } : {}) })
    families.push(this)
  }

  set(value: number, labels: readonly string[] = []): void {
    this.#metric.set(labelObject(this.labelNames, labels), value)
  }

  add(n: number, labels: readonly string[] = []): void {
    this.#metric.inc(labelObject(this.labelNames, labels), n)
  }

  async snapshot(): Promise<FamilySnapshot> {
    return { name: this.name, type: 'gauge', labelNames: this.labelNames, series: await seriesOf(this.#metric, this.labelNames) }
  }
}

export class Histogram {
  readonly #metric: PromHistogram<string>
  constructor(readonly name: string, help: string, readonly labelNames: string[], readonly buckets: number[]) {
    this.#metric = new PromHistogram({ name, help, labelNames, buckets, registers: [registry] })
  }

  observe(value: number, labels: readonly string[] = []): void {
    this.#metric.observe(labelObject(this.labelNames, labels), value)
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
  uploadForwards: new Counter('enlil_upload_forwards_total', 'Upload PATCH/PUT requests whose Location named another process (the holder of the live digest), by outcome: relayed, fallback (the owner refused or could not be reached before the body moved: handled here, with a read-back), owner-gone (not announced any more: handled here), owner-lost (it stopped mid-request: 503, the client resumes).', ['outcome']),
  uploadReadBackBytes: new Counter('enlil_upload_readback_bytes_total', 'Bytes of unfinished uploads read back from the store to compute their digest: the process finishing the upload did not hold its live hash (it restarted, or the one that did is gone, or forwarding is off).', []),
  storageRequests: new Counter('enlil_storage_requests_total', 'Requests sent to the store, by operation: the S3 API call (GetObject, HeadObject, PutObject, ListObjectsV2…, retries included), or the filesystem driver\'s operation.', ['op']),
  quotaRejections: new Counter('enlil_quota_rejections_total', 'Uploads and mounts refused because a configured quota would be exceeded.', ['quota']),
  gcRuns: new Counter('enlil_gc_runs_total', 'Garbage collection runs, by outcome.', ['outcome']),
  gcBytesFreed: new Counter('enlil_gc_bytes_freed_total', 'Bytes deleted by garbage collection, counted as each batch of deletions finishes.', []),
  gcBlobsDeleted: new Counter('enlil_gc_blobs_deleted_total', 'Blobs deleted by garbage collection, counted as each batch of deletions finishes.', []),
  mirrorPulls: new Counter('enlil_mirror_pulls_total', 'Pulls of mirrored manifests and blobs, by upstream, kind and result: hit (served from the store), miss (fetched from the upstream), stale (a cached tag served because the upstream failed).', ['upstream', 'kind', 'result']),
  mirrorUpstreamRequests: new Counter('enlil_mirror_upstream_requests_total', 'Requests sent to upstream registries (token requests included), by upstream and kind.', ['upstream', 'kind']),
  mirrorUpstreamBytes: new Counter('enlil_mirror_upstream_bytes_total', 'Blob and manifest bytes received from upstream registries.', ['upstream']),
  mirrorUpstreamErrors: new Counter('enlil_mirror_upstream_errors_total', 'Upstream failures by kind: unreachable, timeout, ratelimited, denied, server, digest (bytes that did not match their digest), cut (a body that broke off).', ['upstream', 'kind']),
  events: new Counter('enlil_notifications_total', 'Webhook events by endpoint and outcome (sent, failed attempt, dropped).', ['endpoint', 'outcome']),
  // Kept beside prom-client's process_resident_memory_bytes: dashboards and alerts use this name.
  residentMemory: new Gauge('enlil_process_resident_memory_bytes', 'Resident memory of the process(es).', [], () => process.memoryUsage.rss()),
}

// Event-loop lag, heap, GC, CPU, handles, file descriptors, under their usual names, after enlil's
// own (registration order is the order of the text). Across workers prom-client aggregates each its
// own way: lag averaged, the Node version taken once, the rest summed.
collectDefaultMetrics({ register: registry })

/** This process's counters and gauges as they are now (histograms are left out). */
export function snapshot(): Promise<FamilySnapshot[]> {
  return Promise.all(families.map((f) => f.snapshot()))
}

/** This process's metrics as JSON, collect callbacks run. */
export function collect(): Promise<ProcessMetrics> {
  return registry.getMetricsAsJSON()
}

/**
 * The text format of one or more processes' metrics, aggregated series by series by prom-client
 * (summed; event-loop lag averaged, the Node version taken once). With one process nothing is
 * aggregated, so nothing is omitted either: process_start_time_seconds, which prom-client leaves
 * out of a sum over processes, stays. A bucket's `le` is moved after the other labels, where it
 * was before prom-client (Prometheus doesn't mind; people who grep the text might).
 */
export function sumText(processes: ProcessMetrics[]): Promise<string> {
  const single = processes.length === 1
  return AggregatorRegistry.aggregate(processes.map((families) => families.map((family) => ({
    ...family,
    aggregator: single && family.aggregator === 'omit' ? 'first' : family.aggregator,
    values: family.values.map((v) => ('le' in v.labels ? { ...v, labels: leLast(v.labels) } : v)),
  })))).metrics()
}

function leLast({ le, ...others }: LabelValues<string>): LabelValues<string> {
  return { ...others, le }
}
