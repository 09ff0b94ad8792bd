#!/usr/bin/env node
// `npm run keys:rotate [-- --local]`: creates a new token-signing key pair (see scripts/src/cli/keys-rotate.ts).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ensureBuilt, ensureNodeModules, main, repoRoot } from './lib/ensure.mjs';

await main(async () => {
  ensureNodeModules();
  ensureBuilt();
  const res = spawnSync(process.execPath, [join(repoRoot, 'scripts/dist/cli/keys-rotate.js'), ...process.argv.slice(2)], {
    stdio: 'inherit',
  });
  process.exit(res.status ?? 1);
});
