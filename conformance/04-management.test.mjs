/** Content management: deleting tags, manifests and blobs ("Content Management"). */
import { describe, expect, it } from 'vitest'
import { repository } from './lib/config.mjs'
import {
  ACCEPT_MANIFESTS, NOT_REWRITTEN, artifactManifest, dottedPaths, emptyBlob, expectError, expectWellFormedWarnings, newClient, operations,
  randomBlob, unknownDigest,
} from './lib/oci.mjs'

const client = newClient()
const ops = operations(client)
const repo = repository('management')

const getManifest = (reference, name = repo) => client.request('GET', `/v2/${name}/manifests/${reference}`, { headers: { Accept: ACCEPT_MANIFESTS } })
const tagsOf = async (name = repo) => {
  const reply = await client.request('GET', `/v2/${name}/tags/list`)
  expect(reply.status, reply.info).toBe(200)
  return reply.json()?.tags ?? []
}

/**
 * Asserts a 202 to a DELETE. 400 and 405 are what the spec prescribes when deletion is disabled:
 * the message then says so, since these checks need deletion enabled.
 */
function expectAccepted(reply) {
  if (reply.status === 400 || reply.status === 405) {
    expect.fail(`the registry refused the delete with ${reply.status}, as it would with deletion disabled; this workflow needs it enabled\n${reply.info}`)
  }
  expect(reply.status, reply.info).toBe(202)
}

describe('content management', () => {
  it('end-9: DELETE through a "." or ".." segment, raw or percent-encoded, deletes nothing in another repository', async () => {
    const { manifest } = await ops.pushImage(repo, ['kept-through-dots'])
    for (const path of dottedPaths(repo, 'manifests/kept-through-dots')) {
      const res = await client.verbatim('DELETE', path, { like: `/v2/${repo}/manifests/kept-through-dots`, headers: { Accept: ACCEPT_MANIFESTS } })
      expect(NOT_REWRITTEN, res.info).toContain(res.status)
    }
    const reply = await getManifest('kept-through-dots')
    expect(reply.status, reply.info).toBe(200)
    expect(reply.body.equals(manifest.bytes), reply.info).toBe(true)
  })

  it('end-9: DELETE tag → 202; the tag then 404 MANIFEST_UNKNOWN, while the manifest and its other tags stay', async () => {
    const { manifest } = await ops.pushImage(repo, ['tag-to-delete', 'tag-to-keep'])
    expectAccepted(await client.request('DELETE', `/v2/${repo}/manifests/tag-to-delete`))
    expectError(await getManifest('tag-to-delete'), 404, 'MANIFEST_UNKNOWN')
    for (const reference of [manifest.digest, 'tag-to-keep']) {
      const reply = await getManifest(reference)
      expect(reply.status, reply.info).toBe(200)
      expect(reply.body.equals(manifest.bytes), reply.info).toBe(true)
    }
    const tags = await tagsOf()
    expect(tags).toContain('tag-to-keep')
    expect(tags).not.toContain('tag-to-delete')
  })

  it('end-9: DELETE manifest by digest → 202; then GET and HEAD by digest → 404 MANIFEST_UNKNOWN', async () => {
    const { manifest } = await ops.pushImage(repo)
    expectAccepted(await client.request('DELETE', `/v2/${repo}/manifests/${manifest.digest}`))
    expectError(await getManifest(manifest.digest), 404, 'MANIFEST_UNKNOWN')
    const head = await client.request('HEAD', `/v2/${repo}/manifests/${manifest.digest}`, { headers: { Accept: ACCEPT_MANIFESTS } })
    expect(head.status, head.info).toBe(404)
  })

  it('end-9: DELETE manifest by digest → its tags 404 and leave the tag list', async () => {
    const name = repository('management-tags')
    const { manifest } = await ops.pushImage(name, ['doomed-1', 'doomed-2'])
    await ops.pushImage(name, ['survivor'])
    expectAccepted(await client.request('DELETE', `/v2/${name}/manifests/${manifest.digest}`))
    for (const tag of ['doomed-1', 'doomed-2']) expectError(await getManifest(tag, name), 404, 'MANIFEST_UNKNOWN')
    expect(await tagsOf(name)).toEqual(['survivor'])
  })

  it('end-9: DELETE unknown manifest digest → 404 MANIFEST_UNKNOWN (code-7)', async () => {
    await ops.pushImage(repo)
    expectError(await client.request('DELETE', `/v2/${repo}/manifests/${unknownDigest()}`), 404, 'MANIFEST_UNKNOWN')
  })

  it('end-9: DELETE manifest in a repository that does not exist → 404', async () => {
    const reply = await client.request('DELETE', `/v2/${repository('no-such-repository')}/manifests/${unknownDigest()}`)
    expectError(reply, 404, ['NAME_UNKNOWN', 'MANIFEST_UNKNOWN'])
  })

  it('end-9: deleting a referrer removes it from the referrers list (end-12a)', async () => {
    const name = repository('management-referrers')
    const { manifest: subject } = await ops.pushImage(name)
    await ops.pushBlob(name, emptyBlob())
    const kept = artifactManifest({ artifactType: 'application/vnd.example.conformance.kept.v1', subject })
    const removed = artifactManifest({ artifactType: 'application/vnd.example.conformance.removed.v1', subject })
    for (const m of [kept, removed]) await ops.pushManifest(name, m.digest, m)
    expectAccepted(await client.request('DELETE', `/v2/${name}/manifests/${removed.digest}`))
    const reply = await client.request('GET', `/v2/${name}/referrers/${subject.digest}`)
    expect(reply.status, reply.info).toBe(200)
    expect(reply.json()?.manifests?.map((d) => d.digest), reply.info).toEqual([kept.digest])
  })

  it('end-10: DELETE blob → 202; then GET → 404 BLOB_UNKNOWN and HEAD → 404', async () => {
    const blob = randomBlob(4096)
    await ops.pushBlob(repo, blob)
    expectAccepted(await client.request('DELETE', `/v2/${repo}/blobs/${blob.digest}`))
    expectError(await client.request('GET', `/v2/${repo}/blobs/${blob.digest}`), 404, 'BLOB_UNKNOWN')
    const head = await client.request('HEAD', `/v2/${repo}/blobs/${blob.digest}`)
    expect(head.status, head.info).toBe(404)
  })

  it('end-10: DELETE unknown blob → 404 BLOB_UNKNOWN (code-1)', async () => {
    await ops.pushImage(repo)
    expectError(await client.request('DELETE', `/v2/${repo}/blobs/${unknownDigest()}`), 404, 'BLOB_UNKNOWN')
  })

  it('end-10: a deleted blob can be pushed again and is then served', async () => {
    const blob = randomBlob(3000)
    await ops.pushBlob(repo, blob)
    expectAccepted(await client.request('DELETE', `/v2/${repo}/blobs/${blob.digest}`))
    await ops.pushBlob(repo, blob)
    const reply = await client.request('GET', `/v2/${repo}/blobs/${blob.digest}`)
    expect(reply.status, reply.info).toBe(200)
    expect(reply.body.equals(blob.bytes), reply.info).toBe(true)
  })

  it('end-9: a deleted manifest can be pushed again and is then served', async () => {
    const { manifest } = await ops.pushImage(repo)
    expectAccepted(await client.request('DELETE', `/v2/${repo}/manifests/${manifest.digest}`))
    await ops.pushManifest(repo, 'pushed-again', manifest)
    const reply = await getManifest('pushed-again')
    expect(reply.status, reply.info).toBe(200)
    expect(reply.body.equals(manifest.bytes), reply.info).toBe(true)
  })

  it('warnings: any Warning header is 299 - "<text>" without a date, at most 4096 bytes per response', () => {
    expectWellFormedWarnings(client)
  })
})
