import { join } from 'node:path'
import { defineConfig } from 'vitest/config'

// The black-box conformance suite: run it with `npm run conformance -- --url http://host:port`
// (conformance/run.mjs sets the environment these tests read and adds the JUnit reporter).
export default defineConfig({
  // Keep vite's cache with the project's, not in a node_modules/ inside conformance/.
  cacheDir: join(import.meta.dirname, '../node_modules/.vite/conformance'),
  test: {
    root: import.meta.dirname,
    include: ['*.test.mjs'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // The four workflow files use separate repositories, so they may run side by side.
    fileParallelism: true,
    maxWorkers: 4,
    // A conformance report is about the registry: never re-run a failed check until it passes.
    retry: 0,
  },
})
