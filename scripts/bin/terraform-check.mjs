#!/usr/bin/env node
// Checks the Terraform root module in terraform/:
//   fmt -check, init -backend=false, validate, and, when an AWS emulator is at hand,
//   a real apply, assertions on the resulting state, a no-drift plan and a destroy.
//
// Plain Node ESM, node: built-ins only. Nothing is written into the repository: the
// module is copied to a temporary directory, which also holds the state and the
// Terraform CLI config, and is removed at the end.
//
// Environment:
//   TF_PROVIDER_MIRROR      root of a provider filesystem mirror (the directory that
//                           contains registry.terraform.io). Unset: conventional
//                           locations are searched, then a bounded `find /`; with no
//                           mirror found, providers come from the registry.
//   TF_CHECK_ENDPOINT       URL of a running emulator (e.g. http://127.0.0.1:4599).
//                           Resources then get unique names so nothing there clashes.
//                           Unset: a private moto_server is started on a free port when
//                           `python3 -c 'import moto'` works, and stopped at the end.
//   TF_CHECK_REQUIRE_APPLY  "1": fail (instead of skip) when no emulator is available.
//   TF_CHECK_KEEP_TMP       "1": keep the temporary directory (for debugging).
//   TF_CHECK_TIMEOUT_SECONDS overall budget (default 280).
//
// Output: one PASS/FAIL/SKIP line per check; exit code 1 on any failure.

import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const TF_SOURCE_DIR = path.join(REPO_ROOT, 'terraform');
const STARTED_AT = Date.now();
const BUDGET_MS = Number(process.env.TF_CHECK_TIMEOUT_SECONDS || 280) * 1000;
const EMULATOR_REGION = 'us-east-1';

const results = { pass: 0, fail: 0, skip: 0 };
const children = new Set();
let tmpDir;
let moto;

// ---------------------------------------------------------------------------
// Reporting

let lastReportAt = Date.now();

function report(status, name, detail) {
  results[status.toLowerCase()] += 1;
  const now = Date.now();
  const line = `${status.padEnd(4)}  ${name} [${((now - lastReportAt) / 1000).toFixed(1)} s]`;
  lastReportAt = now;
  console.log(detail ? `${line}: ${detail}` : line);
}

function check(name, failures, passDetail) {
  if (failures.length === 0) report('PASS', name, passDetail);
  else report('FAIL', name, failures.join('; '));
  return failures.length === 0;
}

// The last lines of a command's output; errors (stderr) first when there are any.
function outputTail(result, lines = 25) {
  return tail(result.stderr.trim() ? result.stderr : result.stdout, lines);
}

function tail(text, lines = 25) {
  return text
    .trimEnd()
    .split('\n')
    .slice(-lines)
    .map((l) => `      | ${l}`)
    .join('\n');
}

function remainingMs() {
  return BUDGET_MS - (Date.now() - STARTED_AT);
}

// ---------------------------------------------------------------------------
// Processes: every child runs in its own process group so that it and anything
// it started can be stopped together, on success, failure, timeout or signal.

function killGroup(child, signal) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

// reserveMs keeps part of the budget for what must follow (the destroy).
function run(cmd, args, { cwd, env, timeoutMs = 120_000, reserveMs = 0 } = {}) {
  const limit = Math.max(1_000, Math.min(timeoutMs, remainingMs() - reserveMs));
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child, 'SIGTERM');
      setTimeout(() => killGroup(child, 'SIGKILL'), 5_000).unref();
    }, limit);
    child.on('error', (err) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code: null, stdout, stderr: `${stderr}${err.message}\n`, timedOut, error: err });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      children.delete(child);
      if (timedOut) stderr += `\n(timed out after ${Math.round(limit / 1000)} s)\n`;
      resolve({ code, stdout, stderr, timedOut });
    });
  });
}

function killAllChildrenSync() {
  for (const child of children) killGroup(child, 'SIGKILL');
  if (moto) killGroup(moto, 'SIGKILL');
}

async function stopMoto() {
  if (!moto) return;
  const child = moto;
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    killGroup(child, 'SIGTERM');
    const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
  moto = undefined;
}

function removeTmp() {
  if (!tmpDir) return;
  if (process.env.TF_CHECK_KEEP_TMP === '1') {
    console.log(`      (kept ${tmpDir})`);
  } else {
    fs.rmSync(tmpDir, { recursive: true, force: true });
  }
  tmpDir = undefined;
}

process.on('exit', killAllChildrenSync);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    console.log(`FAIL  interrupted by ${signal}`);
    killAllChildrenSync();
    removeTmp();
    process.exit(1);
  });
}

// ---------------------------------------------------------------------------
// Provider mirror

const MIRROR_MARKER = path.join('registry.terraform.io', 'hashicorp', 'aws');

function findMirror() {
  if (process.env.TF_PROVIDER_MIRROR) {
    return { root: path.resolve(process.env.TF_PROVIDER_MIRROR), source: 'TF_PROVIDER_MIRROR' };
  }
  const home = os.homedir();
  const dataHome = process.env.XDG_DATA_HOME || path.join(home, '.local', 'share');
  const conventional = [
    path.join(home, '.terraform.d', 'plugins'),
    '/usr/share/terraform/providers',
    '/usr/local/share/terraform/plugins',
    path.join(dataHome, 'terraform', 'plugins'),
  ];
  for (const root of conventional) {
    if (fs.existsSync(path.join(root, MIRROR_MARKER))) return { root, source: 'conventional location' };
  }
  const found = spawnSync(
    'find',
    ['/', '-xdev', '-maxdepth', '7', '-type', 'd', '-path', `*/${MIRROR_MARKER}`, '-print', '-quit'],
    { encoding: 'utf8', timeout: 30_000, stdio: ['ignore', 'pipe', 'ignore'] },
  );
  const hit = (found.stdout || '').split('\n').find(Boolean);
  if (hit) return { root: path.resolve(hit, '..', '..', '..'), source: 'found by search' };
  return null;
}

function hclString(value) {
  return JSON.stringify(value).replaceAll('${', '$${').replaceAll('%{', '%%{');
}

function terraformEnv(mirror) {
  const env = { ...process.env };
  // Only this script decides what the commands see.
  for (const key of Object.keys(env)) {
    if (key.startsWith('TF_VAR_') || key.startsWith('TF_CLI_ARGS') || key.startsWith('AWS_ENDPOINT_URL')) {
      delete env[key];
    }
  }
  delete env.TF_WORKSPACE;
  env.CHECKPOINT_DISABLE = '1';
  env.TF_IN_AUTOMATION = '1';
  env.TF_INPUT = '0';
  env.TF_DATA_DIR = path.join(tmpDir, 'tf-data');

  if (mirror) {
    const config = path.join(tmpDir, 'terraform.rc');
    fs.writeFileSync(
      config,
      [
        'provider_installation {',
        '  filesystem_mirror {',
        `    path    = ${hclString(mirror.root)}`,
        '    include = ["registry.terraform.io/hashicorp/*"]',
        '  }',
        '  direct {',
        '    exclude = ["registry.terraform.io/hashicorp/*"]',
        '  }',
        '}',
        '',
      ].join('\n'),
    );
    env.TF_CLI_CONFIG_FILE = config;
  } else if (env.TF_CLI_CONFIG_FILE && !fs.existsSync(env.TF_CLI_CONFIG_FILE)) {
    delete env.TF_CLI_CONFIG_FILE;
  }
  return env;
}

function emulatorEnv(base) {
  const env = { ...base };
  for (const key of ['AWS_PROFILE', 'AWS_DEFAULT_PROFILE', 'AWS_SESSION_TOKEN', 'AWS_ROLE_ARN', 'AWS_WEB_IDENTITY_TOKEN_FILE']) {
    delete env[key];
  }
  Object.assign(env, {
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_REGION: EMULATOR_REGION,
    AWS_DEFAULT_REGION: EMULATOR_REGION,
    AWS_EC2_METADATA_DISABLED: 'true',
    // Keep the operator's AWS config (profiles, endpoint_url) out of the emulator run.
    AWS_CONFIG_FILE: path.join(tmpDir, 'aws-config-none'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(tmpDir, 'aws-credentials-none'),
  });
  return env;
}

// ---------------------------------------------------------------------------
// Emulator

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

// Any HTTP answer counts: the emulator is up.
function httpAnswers(url) {
  return new Promise((resolve) => {
    const client = url.startsWith('https:') ? https : http;
    const req = client.get(url, { timeout: 1_000 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(false));
  });
}

async function waitForHttp(url, child, timeoutMs) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (child && (child.exitCode !== null || child.signalCode !== null)) return false;
    if (await httpAnswers(url)) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

async function startMoto() {
  const probe = spawnSync('python3', ['-c', 'import moto'], { stdio: 'ignore', timeout: 30_000 });
  if (probe.status !== 0) return null;
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  let log = '';
  moto = spawn('python3', ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  moto.stdout.on('data', (d) => (log = (log + d).slice(-20_000)));
  moto.stderr.on('data', (d) => (log = (log + d).slice(-20_000)));
  moto.on('error', () => {});
  const ready = await waitForHttp(`${endpoint}/moto-api/`, moto, 30_000);
  if (!ready) {
    report('FAIL', `start moto_server on ${endpoint}`, `not answering\n${tail(log)}`);
    await stopMoto();
    return { failed: true };
  }
  report('PASS', `start moto_server on ${endpoint}`);
  return { endpoint, external: false };
}

// ---------------------------------------------------------------------------
// State helpers

function stateResources(show) {
  const out = [];
  const walk = (mod) => {
    if (!mod) return;
    out.push(...(mod.resources || []).filter((r) => r.mode === 'managed'));
    for (const child of mod.child_modules || []) walk(child);
  };
  walk(show.values && show.values.root_module);
  return out;
}

const asArray = (v) => (v === undefined || v === null ? [] : Array.isArray(v) ? v : [v]);

function policyStatements(json) {
  try {
    return asArray(JSON.parse(json).Statement);
  } catch {
    return [];
  }
}

function hasWildcardPrincipal(stmt) {
  const p = stmt.Principal;
  if (p === '*') return true;
  if (p && typeof p === 'object') return Object.values(p).some((v) => asArray(v).includes('*'));
  return false;
}

function conditionValues(stmt, operator, key) {
  const block = stmt.Condition && stmt.Condition[operator];
  return block ? asArray(block[key]).map(String) : null;
}

// ---------------------------------------------------------------------------
// Assertions on the applied state

function assertState({ show, outputs, stateText, expected }) {
  const resources = stateResources(show);
  const byType = (type) => resources.filter((r) => r.type === type);
  const forBucket = (type, bucket) => byType(type).filter((r) => r.values.bucket === bucket);
  const out = Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, v.value]));

  const buckets = out.bucket_names || {};
  const keyArns = out.kms_key_arns || {};
  const bucketList = Object.values(buckets).join(', ');

  check(
    'outputs: bucket names',
    ['primary', 'sensitive', 'backup', 'access_logs']
      .filter((role) => buckets[role] !== expected.buckets[role])
      .map((role) => `${role} is ${buckets[role]}, expected ${expected.buckets[role]}`),
  );

  check(
    'S3 Block Public Access (all four settings) on every bucket (IN-01)',
    Object.values(buckets).flatMap((b) => {
      const pab = forBucket('aws_s3_bucket_public_access_block', b)[0];
      if (!pab) return [`${b}: none`];
      const v = pab.values;
      return v.block_public_acls && v.block_public_policy && v.ignore_public_acls && v.restrict_public_buckets
        ? []
        : [`${b}: not all on`];
    }),
    bucketList,
  );

  check(
    'S3 ACLs disabled (BucketOwnerEnforced) on every bucket (IN-01)',
    Object.values(buckets).flatMap((b) => {
      const oc = forBucket('aws_s3_bucket_ownership_controls', b)[0];
      const ownership = oc && oc.values.rule && oc.values.rule[0] && oc.values.rule[0].object_ownership;
      return ownership === 'BucketOwnerEnforced' ? [] : [`${b}: ${ownership || 'none'}`];
    }),
  );

  check(
    'S3 bucket policies deny aws:SecureTransport=false (IN-02)',
    Object.values(buckets).flatMap((b) => {
      const policy = forBucket('aws_s3_bucket_policy', b)[0];
      if (!policy) return [`${b}: no bucket policy`];
      const ok = policyStatements(policy.values.policy).some(
        (s) => s.Effect === 'Deny' && (conditionValues(s, 'Bool', 'aws:SecureTransport') || []).includes('false'),
      );
      return ok ? [] : [`${b}: no TLS-only statement`];
    }),
  );

  const sse = (b) => {
    const cfg = forBucket('aws_s3_bucket_server_side_encryption_configuration', b)[0];
    const rule = cfg && cfg.values.rule && cfg.values.rule[0];
    const def = rule && rule.apply_server_side_encryption_by_default && rule.apply_server_side_encryption_by_default[0];
    return def ? { algorithm: def.sse_algorithm, key: def.kms_master_key_id, bucketKey: rule.bucket_key_enabled } : {};
  };
  const sensitiveSse = sse(buckets.sensitive);
  check(
    'sensitive bucket: SSE aws:kms with the sensitive CMK and a bucket key (IN-03)',
    [
      sensitiveSse.algorithm !== 'aws:kms' && `algorithm ${sensitiveSse.algorithm}`,
      (!keyArns.sensitive || sensitiveSse.key !== keyArns.sensitive) && `key ${sensitiveSse.key}`,
      sensitiveSse.bucketKey !== true && 'bucket key off',
    ].filter(Boolean),
  );
  const backupSse = sse(buckets.backup);
  const primarySse = sse(buckets.primary);
  check(
    'primary and backup buckets: SSE aws:kms (backup with the backup CMK)',
    [
      primarySse.algorithm !== 'aws:kms' && `primary algorithm ${primarySse.algorithm}`,
      backupSse.algorithm !== 'aws:kms' && `backup algorithm ${backupSse.algorithm}`,
      (!keyArns.backup || backupSse.key !== keyArns.backup) && `backup key ${backupSse.key}`,
    ].filter(Boolean),
  );

  const sensitivePolicy = forBucket('aws_s3_bucket_policy', buckets.sensitive)[0];
  check(
    'sensitive bucket policy denies PutObject under any other key (IN-03)',
    sensitivePolicy &&
      policyStatements(sensitivePolicy.values.policy).some(
        (s) =>
          s.Effect === 'Deny' &&
          asArray(s.Action).includes('s3:PutObject') &&
          Object.values(s.Condition || {}).some((block) =>
            asArray(block['s3:x-amz-server-side-encryption-aws-kms-key-id']).includes(keyArns.sensitive),
          ),
      )
      ? []
      : ['no such statement'],
  );

  check(
    'S3 versioning enabled on every bucket (IN-04)',
    Object.values(buckets).flatMap((b) => {
      const v = forBucket('aws_s3_bucket_versioning', b)[0];
      const status = v && v.values.versioning_configuration && v.values.versioning_configuration[0].status;
      return status === 'Enabled' ? [] : [`${b}: ${status || 'none'}`];
    }),
  );

  check(
    'S3 server access logging of the data buckets into the log bucket (IN-05)',
    ['primary', 'sensitive', 'backup'].flatMap((role) => {
      const l = forBucket('aws_s3_bucket_logging', buckets[role])[0];
      return l && l.values.target_bucket === buckets.access_logs ? [] : [`${buckets[role]}: not logged`];
    }),
  );

  check(
    'S3 lifecycle: abort multipart uploads after 1 day, expire noncurrent versions (IN-06)',
    Object.values(buckets).flatMap((b) => {
      const lc = forBucket('aws_s3_bucket_lifecycle_configuration', b)[0];
      const rules = ((lc && lc.values.rule) || []).filter((r) => r.status === 'Enabled');
      const errs = [];
      if (!rules.some((r) => (r.abort_incomplete_multipart_upload || []).some((a) => a.days_after_initiation === 1))) {
        errs.push(`${b}: no 1-day multipart abort`);
      }
      if (!rules.some((r) => (r.noncurrent_version_expiration || []).some((n) => n.noncurrent_days >= 1))) {
        errs.push(`${b}: no noncurrent expiration`);
      }
      return errs;
    }),
  );

  const backupLc = forBucket('aws_s3_bucket_lifecycle_configuration', buckets.backup)[0];
  const backupDays = ((backupLc && backupLc.values.rule) || [])
    .flatMap((r) => r.noncurrent_version_expiration || [])
    .map((n) => n.noncurrent_days);
  check(
    `backup bucket keeps noncurrent versions ${expected.backupRetentionDays} days`,
    backupDays.includes(expected.backupRetentionDays) ? [] : [`found ${backupDays.join(',') || 'none'}`],
  );

  const keys = byType('aws_kms_key');
  check(
    'KMS keys: three CMKs, rotation on, deletion window >= 7 days, no wildcard principal (IN-03)',
    [
      keys.length !== 3 && `${keys.length} keys`,
      ...keys.flatMap((k) =>
        [
          k.values.enable_key_rotation !== true && `${k.index}: rotation off`,
          !(k.values.deletion_window_in_days >= 7) && `${k.index}: window ${k.values.deletion_window_in_days}`,
          policyStatements(k.values.policy).some((s) => s.Effect === 'Allow' && hasWildcardPrincipal(s)) &&
            `${k.index}: wildcard principal`,
        ].filter(Boolean),
      ),
    ].filter(Boolean),
  );

  const aliases = out.kms_key_aliases || {};
  check(
    'KMS aliases',
    Object.entries(expected.aliases)
      .filter(([role, alias]) => aliases[role] !== alias)
      .map(([role, alias]) => `${role} is ${aliases[role]}, expected ${alias}`),
    Object.values(aliases).join(', '),
  );

  const tables = byType('aws_dynamodb_table');
  check(
    'DynamoDB: keys, PAY_PER_REQUEST, PITR, SSE with KMS, TTL expiresAt where due',
    Object.values(expected.tables).flatMap((want) => {
      const t = tables.find((r) => r.values.name === want.name);
      if (!t) return [`${want.name}: missing`];
      const v = t.values;
      const ttl = (v.ttl || []).find((x) => x.enabled);
      return [
        v.billing_mode !== 'PAY_PER_REQUEST' && `${want.name}: ${v.billing_mode}`,
        v.hash_key !== want.hash && `${want.name}: hash key ${v.hash_key}`,
        (v.range_key || null) !== (want.range || null) && `${want.name}: range key ${v.range_key}`,
        !(v.point_in_time_recovery || []).some((p) => p.enabled) && `${want.name}: PITR off`,
        !(v.server_side_encryption || []).some((s) => s.enabled) && `${want.name}: SSE off`,
        want.ttl && !(ttl && ttl.attribute_name === want.ttl) && `${want.name}: TTL not on ${want.ttl}`,
        !want.ttl && ttl && `${want.name}: unexpected TTL`,
      ].filter(Boolean);
    }),
    tables.map((t) => t.values.name).join(', '),
  );

  const params = out.ssm_parameter_names || {};
  check(
    'outputs: SSM parameter names',
    Object.entries(expected.parameters)
      .filter(([k, name]) => params[k] !== name)
      .map(([k, name]) => `${k} is ${params[k]}, expected ${name}`),
    Object.values(params).join(', '),
  );

  check(
    'SSM: Terraform manages no parameter and no secret value is in the state (IN-12)',
    [
      byType('aws_ssm_parameter').length > 0 && 'aws_ssm_parameter in state',
      /PRIVATE KEY/.test(stateText) && 'state contains "PRIVATE KEY"',
    ].filter(Boolean),
  );
}

// ---------------------------------------------------------------------------
// Main

function expectations(external) {
  // Against a shared emulator every name gets a unique suffix, so the run can't
  // clash with (or destroy) what others created there.
  const runId = `tfc${randomBytes(3).toString('hex')}`;
  const suffix = external ? `-${runId}` : '';
  const namePrefix = external ? runId : 'scs';
  const n = (base) => `${base}${suffix}`;
  const expected = {
    namePrefix,
    buckets: {
      primary: n('scs-primary'),
      sensitive: n('scs-sensitive'),
      backup: n('scs-backup'),
      access_logs: n('scs-access-logs'),
    },
    aliases: { sensitive: n('alias/scs-sensitive'), backup: n('alias/scs-backup'), secrets: n('alias/scs-secrets') },
    tables: {
      users: { name: n('scs-users'), hash: 'username' },
      sessions: { name: n('scs-sessions'), hash: 'pk', ttl: 'expiresAt' },
      throttle: { name: n('scs-throttle'), hash: 'pk', ttl: 'expiresAt' },
      files: { name: n('scs-files'), hash: 'userId', range: 'fileId' },
    },
    parameters: {
      jwt_signing_key: `/${namePrefix}/auth/jwt-signing-key`,
      jwt_public_keys: `/${namePrefix}/auth/jwt-public-keys`,
    },
    backupRetentionDays: 30,
  };
  const vars = {
    environment: 'ci',
    region: EMULATOR_REGION,
    // Emulator-only settings, so that the check can destroy what it applied: no
    // table deletion protection, and buckets may go with their objects (moto
    // writes server access logs into the log bucket). Shortest KMS window.
    kms_deletion_window_in_days: 7,
    dynamodb_deletion_protection: false,
    force_destroy_buckets: true,
  };
  if (external) {
    Object.assign(vars, {
      name_prefix: namePrefix,
      primary_bucket_name: expected.buckets.primary,
      sensitive_bucket_name: expected.buckets.sensitive,
      backup_bucket_name: expected.buckets.backup,
      access_log_bucket_name: expected.buckets.access_logs,
      sensitive_kms_key_alias: expected.aliases.sensitive,
      backup_kms_key_alias: expected.aliases.backup,
      secrets_kms_key_alias: expected.aliases.secrets,
      users_table_name: expected.tables.users.name,
      sessions_table_name: expected.tables.sessions.name,
      throttle_table_name: expected.tables.throttle.name,
      files_table_name: expected.tables.files.name,
    });
  }
  return { expected, vars };
}

function copyModule(dest) {
  fs.cpSync(TF_SOURCE_DIR, dest, {
    recursive: true,
    filter: (src) => {
      const base = path.basename(src);
      return !(
        base === '.terraform' ||
        base.startsWith('terraform.tfstate') ||
        base.endsWith('.tfvars') ||
        base.endsWith('.tfvars.json') ||
        base === 'crash.log'
      );
    },
  });
}

async function main() {
  console.log(`terraform-check: ${path.relative(process.cwd(), TF_SOURCE_DIR) || '.'}`);

  const version = await run('terraform', ['version', '-json'], { timeoutMs: 30_000 });
  if (version.code !== 0) {
    report('FAIL', 'terraform binary', version.stderr.trim() || 'not found on PATH');
    return;
  }
  report('PASS', 'terraform binary', `v${JSON.parse(version.stdout).terraform_version}`);

  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'scs-terraform-check-'));
  const workDir = path.join(tmpDir, 'module');
  copyModule(workDir);

  const mirror = findMirror();
  if (mirror && !fs.existsSync(path.join(mirror.root, MIRROR_MARKER))) {
    report('FAIL', 'provider mirror', `${mirror.root} (${mirror.source}) holds no ${MIRROR_MARKER}`);
    return;
  }
  console.log(
    mirror
      ? `INFO  provider mirror ${mirror.root} (${mirror.source})`
      : 'INFO  no provider mirror found: providers come from the registry',
  );
  const env = terraformEnv(mirror);
  const tf = (args, opts = {}) => run('terraform', [...args], { cwd: workDir, env, ...opts });

  const fmt = await run('terraform', ['fmt', '-check', '-recursive', '-no-color'], {
    cwd: TF_SOURCE_DIR,
    env,
    timeoutMs: 60_000,
  });
  check('terraform fmt -check -recursive', fmt.code === 0 ? [] : [`unformatted:\n${tail(fmt.stdout + fmt.stderr)}`]);

  const init = await tf(['init', '-backend=false', '-input=false', '-no-color'], { timeoutMs: 120_000 });
  if (!check('terraform init -backend=false', init.code === 0 ? [] : [`\n${outputTail(init)}`])) return;

  const validate = await tf(['validate', '-json', '-no-color'], { timeoutMs: 60_000 });
  let diagnostics = {};
  try {
    diagnostics = JSON.parse(validate.stdout);
  } catch {
    diagnostics = { valid: false, diagnostics: [{ summary: tail(validate.stderr) }] };
  }
  const messages = (diagnostics.diagnostics || []).map(
    (d) => `${d.severity || 'error'}: ${d.summary}${d.range ? ` (${d.range.filename}:${d.range.start.line})` : ''}`,
  );
  if (!check('terraform validate', diagnostics.valid ? [] : messages)) return;
  for (const m of messages) console.log(`      ${m}`);

  // Emulator run
  let emulator = null;
  if (process.env.TF_CHECK_ENDPOINT) {
    const endpoint = process.env.TF_CHECK_ENDPOINT.replace(/\/+$/, '');
    if (!(await waitForHttp(endpoint, null, 10_000))) {
      report('FAIL', `emulator at TF_CHECK_ENDPOINT=${endpoint}`, 'not answering');
      return;
    }
    report('PASS', `emulator at TF_CHECK_ENDPOINT=${endpoint}`);
    emulator = { endpoint, external: true };
  } else {
    emulator = await startMoto();
    if (emulator && emulator.failed) return;
  }
  if (!emulator) {
    const status = process.env.TF_CHECK_REQUIRE_APPLY === '1' ? 'FAIL' : 'SKIP';
    report(status, 'apply/destroy against an emulator', 'no TF_CHECK_ENDPOINT and python3 cannot import moto');
    return;
  }

  const { expected, vars } = expectations(emulator.external);
  vars.local_endpoint = emulator.endpoint;
  const varFile = path.join(tmpDir, 'emulator.tfvars.json');
  fs.writeFileSync(varFile, JSON.stringify(vars, null, 2));
  const awsEnv = emulatorEnv(env);
  const tfAws = (args, opts = {}) => tf(args, { env: awsEnv, ...opts });

  let applied = false;
  try {
    const apply = await tfAws(['apply', '-auto-approve', '-input=false', '-no-color', `-var-file=${varFile}`], {
      timeoutMs: 150_000,
      reserveMs: 60_000,
    });
    applied = true;
    if (!check('terraform apply (emulator)', apply.code === 0 ? [] : [`\n${outputTail(apply)}`])) {
      return;
    }

    const show = await tfAws(['show', '-json', '-no-color'], { timeoutMs: 60_000, reserveMs: 60_000 });
    const outputs = await tfAws(['output', '-json', '-no-color'], { timeoutMs: 60_000, reserveMs: 60_000 });
    if (show.code !== 0 || outputs.code !== 0) {
      report('FAIL', 'read state', tail(show.stderr + outputs.stderr));
      return;
    }
    const stateFile = path.join(workDir, 'terraform.tfstate');
    const stateText = fs.existsSync(stateFile) ? fs.readFileSync(stateFile, 'utf8') : show.stdout;
    assertState({ show: JSON.parse(show.stdout), outputs: JSON.parse(outputs.stdout), stateText, expected });

    const plan = await tfAws(['plan', '-detailed-exitcode', '-input=false', '-no-color', `-var-file=${varFile}`], {
      timeoutMs: 90_000,
      reserveMs: 60_000,
    });
    check(
      'terraform plan after apply shows no changes',
      plan.code === 0 ? [] : [plan.code === 2 ? `drift:\n${tail(plan.stdout, 40)}` : `\n${outputTail(plan)}`],
    );
  } finally {
    if (applied) {
      const destroy = await tfAws(['destroy', '-auto-approve', '-input=false', '-no-color', `-var-file=${varFile}`], {
        timeoutMs: 120_000,
      });
      const list = await tfAws(['state', 'list'], { timeoutMs: 30_000 });
      check(
        'terraform destroy (emulator) leaves an empty state',
        [
          destroy.code !== 0 && `destroy failed:\n${outputTail(destroy)}`,
          list.stdout.trim() && `left: ${list.stdout.trim().split('\n').join(', ')}`,
        ].filter(Boolean),
      );
    }
  }
}

let crashed = false;
try {
  await main();
} catch (err) {
  crashed = true;
  report('FAIL', 'terraform-check crashed', err && err.stack ? err.stack : String(err));
} finally {
  await stopMoto();
  removeTmp();
}
const seconds = ((Date.now() - STARTED_AT) / 1000).toFixed(1);
const ok = !crashed && results.fail === 0;
console.log(
  `${ok ? 'PASS' : 'FAIL'}  terraform-check: ${results.pass} passed, ${results.fail} failed, ${results.skip} skipped in ${seconds} s`,
);
process.exitCode = ok ? 0 : 1;
