/**
 * @module Sizes libuv's thread pool before anything uses it. Every file-system call of the filesystem
 * store runs there; the default of 4 threads queues small requests behind each other under load.
 */
process.env.UV_THREADPOOL_SIZE ??= '16'
