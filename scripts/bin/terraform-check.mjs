#!/usr/bin/env node
// The Terraform checks of `npm test` (tests/terraform/src/check.ts): fmt, conventions, init,
// validate, then `terraform test` applying the whole root module to the AWS emulator, with the
// listener-rule comparison, the parity smoke test and the no-change re-plan. Needs the build
// (`npm test` builds first; by hand: `npm run build && node scripts/bin/terraform-check.mjs`).
import { createRequire } from 'node:module';
import { ensureBuilt, ensureMoto, main } from './lib/ensure.mjs';

await main(async () => {
  process.env.PYTHON = ensureMoto();
  ensureBuilt();
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const { runTerraformCheck } = createRequire(import.meta.url)('@scs/terraform-harness/check');
  process.exit(await runTerraformCheck());
});
