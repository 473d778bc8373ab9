/**
 * @module Retention policies: which tags of a repository go, by pattern, count and age.
 *
 * A policy governs the repositories its `repositories` pattern matches (first matching policy wins,
 * as in the ACL) and, in them, the tags its `tags` pattern matches (all by default). Of those, tags
 * matching a `keep` pattern always stay; the `keeplast` most recently pushed stay; the rest go when
 * they were pushed longer ago than `olderthan` (or, without `olderthan`, as soon as they are beyond
 * `keeplast`). Patterns are globs (`*` never crosses `/`) or anchored regexes written `/…/`.
 * "Pushed" is the modified time of the tag's current link: the last PUT of a manifest by that tag.
 * Only tags are removed here; the manifests they pointed to become untagged and are collected by a
 * GC run with delete-untagged (README: Garbage collection and retention).
 */
import { patternMatches } from '../oci/name-patterns.js'
import type { StorageDriver } from '../storage/driver.js'
import { mapLimit } from './parallel.js'
import { paths } from './paths.js'

export interface RetentionPolicy {
  /** Repository names the policy applies to. */
  repositories: string
  /** Tags the policy governs; every tag when absent. */
  tags?: string
  /** Tags never removed by the policy. */
  keep: string[]
  /** How many of the most recently pushed governed tags always stay. */
  keeplast?: number
  /** Governed tags pushed longer ago than this many milliseconds go (beyond keeplast). */
  olderthan?: number
}

export interface ExpiredTag {
  tag: string
  pushedAt: Date
}

/** The first policy whose `repositories` pattern matches the repository. */
export function policyFor(policies: readonly RetentionPolicy[], repo: string): RetentionPolicy | undefined {
  return policies.find((p) => patternMatches(p.repositories, repo))
}

/** Tags the policy removes, given every tag with its push time. Pure: the decision, nothing else. */
export function expiredTags(policy: RetentionPolicy, tags: readonly ExpiredTag[], now: Date): ExpiredTag[] {
  const governed = tags
    .filter((t) => (policy.tags === undefined || patternMatches(policy.tags, t.tag)) && !policy.keep.some((k) => patternMatches(k, t.tag)))
    // Newest first; equal times by name, so the choice is the same on every run.
    .sort((a, b) => b.pushedAt.getTime() - a.pushedAt.getTime() || a.tag.localeCompare(b.tag))
  const beyond = governed.slice(policy.keeplast ?? 0)
  if (policy.olderthan === undefined) return beyond
  const cutoff = now.getTime() - policy.olderthan
  return beyond.filter((t) => t.pushedAt.getTime() < cutoff)
}

/** Reads the push time of every tag of a repository and applies its policy; tags whose link vanished are skipped. */
export async function planRetention(driver: StorageDriver, repo: string, policy: RetentionPolicy, now: Date, concurrency = 16): Promise<ExpiredTag[]> {
  const names = await driver.list(paths.tags(repo))
  const stats = await mapLimit(names, concurrency, async (tag) => {
    const info = await driver.stat(paths.tagCurrentLink(repo, tag))
    return info && !info.isDirectory ? { tag, pushedAt: info.modifiedAt } : undefined
  })
  return expiredTags(policy, stats.filter((t): t is ExpiredTag => t !== undefined), now)
}
