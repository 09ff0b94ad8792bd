#!/usr/bin/env node
// `npm test`: installs what is missing (npm dependencies, moto), then runs every check in order and
// stops at the first failure: build + type-check, type-check of each workspace's tests, lint (eslint, the Jenkinsfile), jest
// (unit, integration against the emulator, end-to-end), Terraform checks, the resilience suite.
// Extra arguments go to jest and leave the resilience suite out: `npm test -- services/auth`.
// Exit code 0 only if every step passed.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureMoto, ensureNodeModules, localBin, main, repoRoot } from './lib/ensure.mjs';

const banner = (text) => process.stdout.write(`\n===== ${text}\n`);

function steps(jestArgs) {
  const { workspaces = [] } = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'));
  const list = [{ name: 'build + type-check (tsc -b)', cmd: localBin('tsc'), args: ['-b'] }];
  for (const ws of workspaces) {
    const config = join(ws, 'tsconfig.test.json');
    if (existsSync(join(repoRoot, config))) {
      list.push({ name: `type-check tests of ${ws}`, cmd: localBin('tsc'), args: ['-p', config, '--noEmit'] });
    }
  }
  if (['eslint.config.mjs', 'eslint.config.js', 'eslint.config.cjs'].some((f) => existsSync(join(repoRoot, f)))) {
    list.push({ name: 'lint (eslint .)', cmd: localBin('eslint'), args: ['.'] });
  }
  // The Jenkinsfile's Groovy (CodeNarc through npm-groovy-lint: needs a Java runtime; .ci/run
  // installs one). --noserver: no CodeNarc server is left running after the step.
  if (existsSync(join(repoRoot, 'Jenkinsfile'))) {
    list.push({ name: 'lint Jenkinsfile (npm-groovy-lint)', cmd: localBin('npm-groovy-lint'), args: ['--noserver', '--failon', 'warning', '--output', 'txt', 'Jenkinsfile'] });
  }
  list.push({ name: `jest${jestArgs.length ? ` ${jestArgs.join(' ')}` : ''}`, cmd: localBin('jest'), args: jestArgs });
  const terraformCheck = join(repoRoot, 'scripts/bin/terraform-check.mjs');
  if (existsSync(terraformCheck)) list.push({ name: 'terraform checks', cmd: process.execPath, args: [terraformCheck] });
  // The load and fault suite (npm run test:resilience) drives a whole stack for a few minutes: last,
  // and not part of a subset run.
  if (jestArgs.length === 0) {
    list.push({ name: 'resilience suite (npm run test:resilience)', cmd: process.execPath, args: [join(repoRoot, 'tests/resilience/dist/run.js')] });
  }
  return list;
}

await main(async () => {
  ensureNodeModules();
  const env = {
    ...process.env,
    // The interpreter that has moto, for the tests' emulator and `npm start` in the end-to-end test.
    PYTHON: ensureMoto(),
    // The AWS SDK warns on Node 20 about its 2027 releases, once per process: noise in test output.
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };

  const results = [];
  for (const step of steps(process.argv.slice(2))) {
    if (results.some((r) => !r.ok)) {
      results.push({ name: step.name, ok: undefined });
      continue;
    }
    banner(step.name);
    const started = Date.now();
    const res = spawnSync(step.cmd, step.args, { cwd: repoRoot, stdio: 'inherit', env });
    if (res.error) process.stderr.write(`${step.cmd} could not be started: ${res.error.message}\n`);
    results.push({ name: step.name, ok: res.status === 0, seconds: (Date.now() - started) / 1000 });
  }

  const width = Math.max(...results.map((r) => r.name.length));
  banner('summary');
  for (const r of results) {
    const status = r.ok === undefined ? 'SKIP' : r.ok ? 'PASS' : 'FAIL';
    const detail = r.ok === undefined ? 'not run (an earlier step failed)' : `${r.seconds.toFixed(1)} s`;
    process.stdout.write(`  ${status}  ${r.name.padEnd(width)}  ${detail}\n`);
  }
  const passed = results.filter((r) => r.ok === true).length;
  const failed = results.filter((r) => r.ok === false).length;
  process.stdout.write(`${passed} passed, ${failed} failed\n`);
  process.exit(failed === 0 ? 0 : 1);
});
