#!/usr/bin/env node
// `npm run test:deploy`: the deploy pipeline's stage scripts (scripts/pipeline/) rehearsed against
// the AWS emulator, podman and a local image registry (scripts/src/pipeline/rehearsal.ts).
// Needs the build (`npm run build`; done here when missing), root, podman, docker-registry,
// terraform >= 1.10 and moto.
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { ensureBuilt, ensureMoto, ensureNodeModules, main, repoRoot } from './lib/ensure.mjs';

await main(async () => {
  ensureNodeModules();
  process.env.PYTHON = ensureMoto();
  ensureBuilt();
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const { runDeployRehearsal } = createRequire(import.meta.url)(join(repoRoot, 'scripts/dist/pipeline/rehearsal.js'));
  process.exit(await runDeployRehearsal());
});
