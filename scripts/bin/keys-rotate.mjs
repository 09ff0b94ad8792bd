#!/usr/bin/env node
// `npm run keys:rotate [-- --local]`: creates a new token-signing key pair (packages/local-stack/src/cli/keys-rotate.ts;
// `--help` explains the options).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ensureBuilt, ensureNodeModules, main, repoRoot } from './lib/ensure.mjs';

await main(async () => {
  ensureNodeModules();
  ensureBuilt();
  const cli = join(repoRoot, 'packages/local-stack/dist/cli/keys-rotate.js');
  // The AWS SDK warns on Node 20 about its 2027 releases, once per process: noise here.
  const env = { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...process.env };
  const res = spawnSync(process.execPath, [cli, ...process.argv.slice(2)], { stdio: 'inherit', env });
  process.exit(res.status ?? 1);
});
