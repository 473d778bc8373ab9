import { defineConfig } from 'vitest/config'

// Unit tests sit next to the code (src/**), HTTP and end-to-end flows in test/.
// conformance/ has its own config: it runs against a URL, see conformance/run.mjs.
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Most test files wait on processes they start (registries, RGW, clients), not on this CPU:
    // two at a time on the 2 cores CI has (vitest would run one: cores - 1; three made timing-
    // sensitive tests flaky).
    maxWorkers: 2,
    // One real S3 server (Ceph RGW) for the whole run, when ceph is installed.
    globalSetup: ['test/setup/s3-server.ts'],
  },
})
