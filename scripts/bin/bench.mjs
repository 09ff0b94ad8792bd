#!/usr/bin/env node
// `npm run bench [-- upload|auth] [--profile]`: installs what is missing, builds, then runs the
// benchmarks (bench/src/run.ts), passing its arguments on.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ensureBuilt, ensureMoto, ensureNodeModules, main, repoRoot } from './lib/ensure.mjs';

await main(async () => {
  ensureNodeModules();
  const python = ensureMoto();
  ensureBuilt();
  const child = spawn(process.execPath, [join(repoRoot, 'bench/dist/run.js'), ...process.argv.slice(2)], {
    cwd: repoRoot,
    stdio: 'inherit',
    env: { ...process.env, PYTHON: python },
  });
  // The runner stops every process it started on SIGINT/SIGTERM; forward them and exit with its code.
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
});
