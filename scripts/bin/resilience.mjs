#!/usr/bin/env node
// `npm run test:resilience`: installs what is missing, builds, then runs the load and fault suite
// (scripts/src/resilience/run.ts) against a stack started the way `npm start` starts it.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ensureBuilt, ensureMoto, ensureNodeModules, main, repoRoot } from './lib/ensure.mjs';

await main(async () => {
  ensureNodeModules();
  const python = ensureMoto();
  ensureBuilt();
  const child = spawn(process.execPath, [join(repoRoot, 'scripts/dist/resilience/run.js')], {
    cwd: repoRoot,
    stdio: 'inherit',
    env: { ...process.env, PYTHON: python, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  });
  // The suite stops its stack on SIGINT/SIGTERM; forward them and exit with its code.
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
});
