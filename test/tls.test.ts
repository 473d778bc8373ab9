/** enlil serving HTTPS itself, for a bare server with no proxy in front. */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { request } from 'node:https'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort, removeDir, requirePart, ROOT, tempDir } from './support/processes.js'

const haveOpenssl = requirePart(existsSync('/usr/bin/openssl'), 'openssl (to make a test certificate)', 'apt-get install openssl')

describe.skipIf(!haveOpenssl)('HTTPS', () => {
  let dir: string
  let child: ChildProcess
  let port: number
  beforeAll(async () => {
    dir = tempDir('tls')
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem',
      '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { cwd: dir, stdio: 'ignore' })
    port = await freePort()
    child = spawn(process.execPath, [join(ROOT, 'dist/main.js'), 'serve'], {
      env: { ...process.env, REGISTRY_HTTP_ADDR: `127.0.0.1:${port}`, REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: join(dir, 'data'),
        REGISTRY_HTTP_TLS_CERTIFICATE: join(dir, 'cert.pem'), REGISTRY_HTTP_TLS_KEY: join(dir, 'key.pem'), REGISTRY_LOG_LEVEL: 'warn' },
      stdio: 'ignore',
    })
    for (let i = 0; i < 100; i++) {
      if (await get('/v2/').then(() => true, () => false)) return
      await new Promise((r) => setTimeout(r, 100))
    }
    throw new Error('enlil did not answer over HTTPS within 10 s')
  })
  afterAll(() => {
    child?.kill('SIGKILL')
    removeDir(dir)
  })

  function get(path: string, method = 'GET'): Promise<{ status: number; headers: Record<string, unknown> }> {
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path, method, ca: readFileSync(join(dir, 'cert.pem')) }, (res) => {
        res.resume()
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }))
      })
      req.on('error', reject)
      req.end()
    })
  }

  it('serves the API over TLS with the configured certificate, and Locations say https', async () => {
    expect((await get('/v2/')).status).toBe(200)
    const post = await get('/v2/tls/app/blobs/uploads/', 'POST')
    expect(post.status).toBe(202)
    expect(String(post.headers.location)).toMatch(new RegExp(`^https://127\\.0\\.0\\.1:${port}/v2/tls/app/blobs/uploads/`))
  })
})
