#!/usr/bin/env node
// `npm run bench [-- upload|auth] [--profile]`: installs what is missing, builds, then runs the
// benchmarks (bench/src/run.ts), passing its arguments on.
import { ensureBuilt, ensureMoto, ensureNodeModules, main, runBuilt } from './lib/ensure.mjs';

await main(async () => {
  ensureNodeModules();
  const python = ensureMoto();
  ensureBuilt();
  // The runner stops every process it started on SIGINT/SIGTERM.
  runBuilt('bench/dist/run.js', python, process.argv.slice(2));
});
