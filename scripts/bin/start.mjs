#!/usr/bin/env node
// `npm start`: installs what is missing (npm dependencies, moto), builds, then runs the local stack
// (packages/local-stack/src/stack/run.ts) in this process, so Ctrl-C / SIGTERM reach the stack runner directly.
import { createRequire } from 'node:module';
import { ensureBuilt, ensureMoto, ensureNodeModules, main } from './lib/ensure.mjs';

await main(async () => {
  ensureNodeModules();
  // The stack's emulator starts with the interpreter chosen here (system Python or .venv/).
  process.env.PYTHON = ensureMoto();
  ensureBuilt();
  // The AWS SDK warns on Node 20 about its 2027 releases, once per process: noise here.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const { runStack } = createRequire(import.meta.url)('@scs/local-stack/stack/run');
  process.exit(await runStack(process.argv.slice(2)));
});
