import { defineConfig } from 'vitest/config'

// `npm run bench:gc`: the GC measurement of test/bench/gc-bench.ts (10,000 blobs on each store), not part of `npm test`.
export default defineConfig({
  test: {
    include: ['test/bench/gc-bench.ts'],
    testTimeout: 600_000,
    hookTimeout: 600_000,
    pool: 'forks',
    globalSetup: ['test/setup/s3-server.ts'],
  },
})
