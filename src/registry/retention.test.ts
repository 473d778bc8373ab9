import { describe, expect, it } from 'vitest'
import { expiredTags, policyFor, type RetentionPolicy } from './retention.js'

const DAY = 86_400_000
const now = new Date('2026-06-01T00:00:00Z')
const tag = (name: string, daysAgo: number) => ({ tag: name, pushedAt: new Date(now.getTime() - daysAgo * DAY) })
const names = (policy: RetentionPolicy, tags: ReturnType<typeof tag>[]) => expiredTags(policy, tags, now).map((t) => t.tag).sort()

describe('retention policies', () => {
  const tags = [tag('latest', 40), tag('v1.0', 90), tag('v1.1', 30), tag('pr-1', 20), tag('pr-2', 15), tag('pr-3', 13), tag('pr-4', 1)]

  it('olderthan: one image per pull request, gone after 14 days', () => {
    expect(names({ repositories: '*', tags: 'pr-*', keep: [], olderthan: 14 * DAY }, tags)).toEqual(['pr-1', 'pr-2'])
  })

  it('keeplast: the N most recently pushed stay, whatever their age', () => {
    expect(names({ repositories: '*', tags: 'pr-*', keep: [], keeplast: 2 }, tags)).toEqual(['pr-1', 'pr-2'])
    expect(names({ repositories: '*', keep: [], keeplast: 6 }, tags)).toEqual(['v1.0'])
  })

  it('keeplast and olderthan together: beyond the last N and old', () => {
    expect(names({ repositories: '*', keep: [], keeplast: 1, olderthan: 25 * DAY }, tags)).toEqual(['latest', 'v1.0', 'v1.1'])
  })

  it('keep patterns (globs and /regexes/) are never removed and do not count in keeplast', () => {
    const policy: RetentionPolicy = { repositories: '*', keep: ['latest', '/v\\d+\\.\\d+/'], keeplast: 1 }
    expect(names(policy, tags)).toEqual(['pr-1', 'pr-2', 'pr-3'])
  })

  it('the first policy whose repositories pattern matches applies; * does not cross /', () => {
    const policies: RetentionPolicy[] = [
      { repositories: 'ci/*', keep: [], keeplast: 1 },
      { repositories: '/team-.+/', keep: [], keeplast: 5 },
    ]
    expect(policyFor(policies, 'ci/app')).toBe(policies[0])
    expect(policyFor(policies, 'ci/app/sub')).toBeUndefined()
    expect(policyFor(policies, 'team-a/x')).toBe(policies[1])
  })
})
