#!/usr/bin/env node
// `npm start`: installs what is missing, builds, then runs the local stack (scripts/src/stack/run.ts).
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ensureBuilt, ensureMoto, ensureNodeModules, main, repoRoot } from './lib/ensure.mjs';

await main(async () => {
  ensureNodeModules();
  const python = ensureMoto();
  ensureBuilt();
  const child = spawn(process.execPath, [join(repoRoot, 'scripts/dist/stack/run.js')], {
    cwd: repoRoot,
    stdio: 'inherit',
    env: { ...process.env, PYTHON: python },
  });
  // The stack runner handles SIGINT/SIGTERM itself; forward them and exit with its code.
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
});
