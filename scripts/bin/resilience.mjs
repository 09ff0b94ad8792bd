#!/usr/bin/env node
// `npm run test:resilience`: installs what is missing, builds, then runs the load and fault suite
// (tests/resilience/src/run.ts) against a stack started the way `npm start` starts it.
import { ensureBuilt, ensureMoto, ensureNodeModules, main, runBuilt } from './lib/ensure.mjs';

await main(async () => {
  ensureNodeModules();
  const python = ensureMoto();
  ensureBuilt();
  // The AWS SDK warns on Node 20 about its 2027 releases, once per process: noise here.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  // The suite stops its stack on SIGINT/SIGTERM.
  runBuilt('tests/resilience/dist/run.js', python);
});
