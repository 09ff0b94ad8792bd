import type * as IamSimulate from '@cloud-copilot/iam-simulate';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * IAM proven by evaluation (security checklist IN-14): each service's and the Lambda's AWS calls,
 * as listed in their inventories (services/<name>/iam-inventory.json), evaluated against the
 * policies Terraform applied for that principal (its role's identity policies, and the bucket,
 * key or queue policy of the resource) with an IAM policy evaluator
 * (`@cloud-copilot/iam-simulate`, a test-only dependency: AGPL, never in an image or bundle).
 * Every listed call must be allowed; every call of `DENIED` must be denied.
 *
 * The evaluator validates each request (action, resource type, policies) and the condition
 * keys an inventory names: a key IAM does not evaluate for that action is an inventory error.
 * It does not match `kms:EncryptionContext:<key>` condition keys when it validates, so the
 * decision comes from its unvalidated evaluation, which honours every key as sent.
 */

/** One authorisation IAM makes for a call: action, resource ARN, the condition keys the request really carries. */
export interface InventoryCall {
  action: string;
  resource: string;
  context?: Record<string, string>;
  why: string;
}

/** A service's inventory: for each SDK command (or lib-storage `Upload`, presigner) found in its sources, its calls or why it is never sent. */
export interface Inventory {
  principal: string;
  commands: Record<string, { calls: InventoryCall[] } | { notSent: string }>;
}

/** What the root module's `iam_evaluation` output holds (terraform/outputs.tf). */
export interface AppliedIam {
  account_id: string;
  region: string;
  principals: Record<string, { role_arn: string; policies: unknown[] }>;
  resource_policies: Record<string, unknown>;
  names: Record<string, string>;
}

/** A call that must stay impossible for a principal. */
export interface DeniedCall extends InventoryCall {
  principal: string;
}

/** The principals that have an inventory, and where it lives (repository-relative). */
export const INVENTORIES: Record<string, string> = {
  auth: 'services/auth/iam-inventory.json',
  upload: 'services/upload/iam-inventory.json',
  'backup-sync': 'services/backup-sync/iam-inventory.json',
  'sensitive-mover': 'services/sensitive-mover/iam-inventory.json',
};

/** Reads every inventory from the repository at `root`. */
export function readInventories(root: string): Inventory[] {
  return Object.values(INVENTORIES).map((path) => JSON.parse(readFileSync(join(root, path), 'utf8')) as Inventory);
}

const SERVING = ['auth', 'upload', 'backup-sync'];
const ALL = [...SERVING, 'sensitive-mover'];
const FILE = 'users/u-1/f-1';
const obj = (bucket: string, key = FILE) => `arn:aws:s3:::\${${bucket}}/${key}`;
const bucketArn = (bucket: string) => `arn:aws:s3:::\${${bucket}}`;
const SIGNING_KEY = 'arn:aws:ssm:${region}:${account}:parameter${JWT_SIGNING_KEY_PARAM}';
const THROTTLE = 'arn:aws:dynamodb:${region}:${account}:table/${THROTTLE_TABLE}';
const FILES = 'arn:aws:dynamodb:${region}:${account}:table/${FILES_TABLE}';
const KEYS = ['SENSITIVE_KMS_KEY_ID', 'BACKUP_KMS_KEY_ID', 'SECRETS_KMS_KEY_ID'];
const viaS3 = (bucket: string) => ({ 'kms:ViaService': 's3.${region}.amazonaws.com', 'kms:EncryptionContext:aws:s3:arn': bucketArn(bucket), 'kms:CallerAccount': '${account}' });
const readSigningKey = (principal: string): DeniedCall[] => [
  { principal, action: 'ssm:GetParameter', resource: SIGNING_KEY, why: 'reading the token-signing key would let it mint admin tokens' },
  {
    principal,
    action: 'kms:Decrypt',
    resource: '${SECRETS_KMS_KEY_ID}',
    context: { 'kms:ViaService': 'ssm.${region}.amazonaws.com', 'kms:EncryptionContext:PARAMETER_ARN': SIGNING_KEY, 'kms:CallerAccount': '${account}' },
    why: 'decrypting the signing key',
  },
];

/** The calls that must be denied: the isolation the per-service roles and the resource policies promise. */
export const DENIED: DeniedCall[] = [
  ...readSigningKey('upload'),
  ...readSigningKey('backup-sync'),
  ...readSigningKey('sensitive-mover'),
  // No serving role destroys a backup: upload and auth cannot delete a version at all; none may bypass or change retention.
  ...['upload', 'auth'].flatMap((principal) => [
    { principal, action: 's3:DeleteObjectVersion', resource: obj('BACKUP_BUCKET'), why: 'deleting a backup version' },
    { principal, action: 's3:DeleteObject', resource: obj('BACKUP_BUCKET'), why: 'hiding a backup behind a delete marker' },
    { principal, action: 's3:GetObject', resource: obj('BACKUP_BUCKET'), why: 'reading backups' },
  ]),
  ...ALL.flatMap((principal) => [
    { principal, action: 's3:BypassGovernanceRetention', resource: obj('BACKUP_BUCKET'), why: 'deleting a locked backup version before its retention is over' },
    { principal, action: 's3:PutObjectRetention', resource: obj('BACKUP_BUCKET'), why: 'shortening a backup version\'s retention' },
    { principal, action: 's3:PutObjectLegalHold', resource: obj('BACKUP_BUCKET'), why: 'changing a backup\'s legal hold' },
    { principal, action: 's3:PutBucketObjectLockConfiguration', resource: bucketArn('BACKUP_BUCKET'), why: 'changing the backup bucket\'s Object Lock' },
    { principal, action: 's3:PutLifecycleConfiguration', resource: bucketArn('BACKUP_BUCKET'), why: 'expiring backups early' },
    { principal, action: 's3:PutBucketPolicy', resource: bucketArn('PRIMARY_BUCKET'), why: 'rewriting a bucket policy' },
    ...KEYS.map((key) => ({ principal, action: 'kms:ScheduleKeyDeletion', resource: `\${${key}}`, why: 'scheduling a key\'s deletion' })),
    ...KEYS.map((key) => ({ principal, action: 'kms:PutKeyPolicy', resource: `\${${key}}`, why: 'rewriting a key policy' })),
  ]),
  // auth touches no file bucket and no file key.
  ...['PRIMARY_BUCKET', 'SENSITIVE_BUCKET', 'BACKUP_BUCKET'].flatMap((bucket) => [
    { principal: 'auth', action: 's3:GetObject', resource: obj(bucket), why: 'auth reading files' },
    { principal: 'auth', action: 's3:PutObject', resource: obj(bucket), context: {}, why: 'auth writing files' },
    { principal: 'auth', action: 's3:ListBucket', resource: bucketArn(bucket), why: 'auth listing files' },
  ]),
  { principal: 'auth', action: 'kms:Decrypt', resource: '${SENSITIVE_KMS_KEY_ID}', context: viaS3('SENSITIVE_BUCKET'), why: 'auth decrypting vault files' },
  // upload: nothing of the backups' key either; no accounts.
  { principal: 'upload', action: 'kms:Decrypt', resource: '${BACKUP_KMS_KEY_ID}', context: viaS3('BACKUP_BUCKET'), why: 'upload decrypting backups' },
  { principal: 'upload', action: 'dynamodb:GetItem', resource: 'arn:aws:dynamodb:${region}:${account}:table/${USERS_TABLE}', why: 'upload reading accounts (password hashes)' },
  {
    principal: 'upload',
    action: 'dynamodb:GetItem',
    resource: 'arn:aws:dynamodb:${region}:${account}:table/${USERS_TABLE}',
    context: { 'dynamodb:Select': 'SPECIFIC_ATTRIBUTES', 'dynamodb:Attributes': 'passwordHash' },
    why: 'upload reading password hashes by name',
  },
  { principal: 'upload', action: 'dynamodb:UpdateItem', resource: 'arn:aws:dynamodb:${region}:${account}:table/${USERS_TABLE}', why: 'upload making itself an admin' },
  { principal: 'backup-sync', action: 'dynamodb:UpdateItem', resource: 'arn:aws:dynamodb:${region}:${account}:table/${USERS_TABLE}', why: 'backup-sync changing accounts' },
  // upload writes only its own shared rate-limit counters in the throttle table, never auth's login throttle or rate limits.
  ...(['dynamodb:UpdateItem', 'dynamodb:PutItem'] as const).flatMap((action) => [
    { principal: 'upload', action, resource: THROTTLE, context: { 'dynamodb:LeadingKeys': 'addr#203.0.113.9' }, why: 'upload resetting or raising auth\'s login throttle' },
    { principal: 'upload', action, resource: THROTTLE, context: { 'dynamodb:LeadingKeys': 'rl#auth#register#203.0.113.9' }, why: 'upload changing auth\'s shared rate limits' },
  ]),
  { principal: 'upload', action: 'dynamodb:DeleteItem', resource: THROTTLE, context: { 'dynamodb:LeadingKeys': 'rl#upload#upload#u-1' }, why: 'upload deleting a rate-limit counter (starting its window over)' },
  // Only upload writes quota reservations (PutItem on the files table).
  { principal: 'backup-sync', action: 'dynamodb:PutItem', resource: FILES, why: 'backup-sync putting whole items (reservations, records) into the files table' },
  { principal: 'sensitive-mover', action: 'dynamodb:PutItem', resource: FILES, why: 'the Lambda putting items into the files table' },
  { principal: 'sensitive-mover', action: 'dynamodb:DeleteItem', resource: FILES, why: 'the Lambda deleting records or reservations' },
  ...['backup-sync', 'sensitive-mover'].map((principal) => ({ principal, action: 'dynamodb:UpdateItem', resource: THROTTLE, why: 'writing the rate limits or the login throttle' })),
  // The Lambda writes only into the vault, and never reaches the backups or their key.
  { principal: 'sensitive-mover', action: 's3:PutObject', resource: obj('PRIMARY_BUCKET'), context: { 's3:x-amz-server-side-encryption': 'AES256' }, why: 'the Lambda writing into the primary bucket' },
  { principal: 'sensitive-mover', action: 's3:PutObject', resource: obj('PRIMARY_BUCKET', 'incoming/u-1/f-1'), why: 'the Lambda writing a staged upload' },
  { principal: 'sensitive-mover', action: 's3:PutObjectTagging', resource: obj('PRIMARY_BUCKET'), why: 'the Lambda re-tagging a primary file (sensitive=false would keep it out of the vault)' },
  { principal: 'sensitive-mover', action: 's3:PutObject', resource: obj('BACKUP_BUCKET'), context: {}, why: 'the Lambda writing backups' },
  { principal: 'sensitive-mover', action: 's3:DeleteObjectVersion', resource: obj('BACKUP_BUCKET'), why: 'the Lambda deleting backups' },
  { principal: 'sensitive-mover', action: 's3:GetObject', resource: obj('BACKUP_BUCKET'), why: 'the Lambda reading backups' },
  { principal: 'sensitive-mover', action: 'kms:GenerateDataKey', resource: '${BACKUP_KMS_KEY_ID}', context: viaS3('BACKUP_BUCKET'), why: 'the Lambda using the backup key' },
  { principal: 'sensitive-mover', action: 'kms:Decrypt', resource: '${SECRETS_KMS_KEY_ID}', context: { 'kms:ViaService': 'ssm.${region}.amazonaws.com', 'kms:CallerAccount': '${account}' }, why: 'the Lambda using the secrets key' },
  // The buckets' own policies: a request naming the wrong encryption is refused even where the role may write.
  { principal: 'upload', action: 's3:PutObject', resource: obj('PRIMARY_BUCKET'), context: { 's3:x-amz-server-side-encryption': 'aws:kms' }, why: 'a primary object under any encryption but SSE-S3 (bucket policy)' },
  {
    principal: 'backup-sync',
    action: 's3:PutObject',
    resource: obj('BACKUP_BUCKET'),
    context: { 's3:x-amz-server-side-encryption': 'aws:kms', 's3:x-amz-server-side-encryption-aws-kms-key-id': '${SECRETS_KMS_KEY_ID}' },
    why: 'a backup under a key the bucket does not accept (bucket policy)',
  },
  { principal: 'backup-sync', action: 's3:PutObject', resource: obj('BACKUP_BUCKET'), context: { 's3:x-amz-server-side-encryption': 'AES256' }, why: 'a backup without KMS (bucket policy)' },
];

/** Replaces `${NAME}` with the applied name, `${account}`, `${region}`; throws on a placeholder it does not know. */
export function expand(text: string, applied: Pick<AppliedIam, 'account_id' | 'region' | 'names'>): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
    if (name === 'account') return applied.account_id;
    if (name === 'region') return applied.region;
    const value = applied.names[name];
    if (value === undefined) throw new Error(`unknown placeholder \${${name}} in "${text}"`);
    return value;
  });
}

/** The resource policy IAM weighs for `arn`: the bucket's for an object or bucket, else the key's or queue's, if any. */
export function resourcePolicyFor(arn: string, policies: Record<string, unknown>): { arn: string; policy: unknown } | undefined {
  const owner = arn.startsWith('arn:aws:s3:::') ? arn.split('/')[0] : arn;
  return owner && policies[owner] !== undefined ? { arn: owner, policy: policies[owner] } : undefined;
}

export type Decision = 'Allowed' | 'ImplicitlyDenied' | 'ExplicitlyDenied' | string;

export interface Evaluated {
  call: InventoryCall;
  decision: Decision;
  /** Problems with the request itself: an invalid action, resource or policy; a condition key IAM does not evaluate for the action. */
  problems: string[];
}

type Simulator = typeof IamSimulate;

/** Evaluates one call of `principal` against the applied policies. */
export async function evaluateCall(sim: Simulator, applied: AppliedIam, principal: string, call: InventoryCall): Promise<Evaluated> {
  const identity = applied.principals[principal];
  if (!identity) return { call, decision: 'no such principal', problems: [`no applied role for ${principal}`] };
  const resource = expand(call.resource, applied);
  const context = Object.fromEntries(Object.entries(call.context ?? {}).map(([k, v]) => [k, expand(v, applied)]));
  const roleName = identity.role_arn.split('/').pop() ?? principal;
  const requestContext: Record<string, string> = {
    'aws:SecureTransport': 'true',
    'aws:PrincipalArn': identity.role_arn,
    'aws:PrincipalAccount': applied.account_id,
    ...(call.action.startsWith('s3:') ? { 's3:TlsVersion': '1.3' } : {}),
    ...context,
  };
  const found = resourcePolicyFor(resource, applied.resource_policies);
  const simulation = {
    identityPolicies: identity.policies.map((policy, i) => ({ name: `${principal}-${i}`, policy })),
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    request: {
      action: call.action,
      principal: `arn:aws:sts::${applied.account_id}:assumed-role/${roleName}/session`,
      resource: { resource, accountId: applied.account_id },
      contextVariables: requestContext,
    },
  };
  const problems: string[] = [];
  const validated = await sim.runSimulation({ ...simulation, resourcePolicy: found?.policy } as Parameters<Simulator['runSimulation']>[0], {});
  if (validated.resultType === 'error') {
    problems.push(`invalid request: ${JSON.stringify(validated.errors)}`);
  } else if (validated.resultType === 'single') {
    const ignored = (validated.result.ignoredContextKeys ?? []).filter((key) => key in context && !/^kms:EncryptionContext:/i.test(key));
    if (ignored.length) problems.push(`condition keys IAM does not evaluate for ${call.action}: ${ignored.join(', ')}`);
  }
  const decision = sim.runUnsafeSimulation(
    {
      ...simulation,
      resourcePolicy: found ? ({ __validated: true, policyDocument: found.policy, metadata: { name: found.arn } } as never) : undefined,
    } as Parameters<Simulator['runUnsafeSimulation']>[0],
    {},
  );
  return { call: { ...call, resource, context }, decision, problems };
}

export interface PrincipalReport {
  principal: string;
  allowed: number;
  denied: number;
  failures: string[];
}

const describe = (call: InventoryCall) =>
  `${call.action} on ${call.resource}${call.context && Object.keys(call.context).length ? ` with ${JSON.stringify(call.context)}` : ''} (${call.why})`;

/**
 * Every inventory call must be allowed, every `DENIED` call denied; one report per principal.
 * `sim` is `@cloud-copilot/iam-simulate`, loaded by the caller (a test-only dependency).
 */
export async function evaluateInventories(sim: Simulator, applied: AppliedIam, inventories: Inventory[], denied: DeniedCall[] = DENIED): Promise<PrincipalReport[]> {
  const reports: PrincipalReport[] = [];
  for (const inventory of inventories) {
    const report: PrincipalReport = { principal: inventory.principal, allowed: 0, denied: 0, failures: [] };
    for (const [command, entry] of Object.entries(inventory.commands)) {
      if (!('calls' in entry)) continue;
      for (const call of entry.calls) {
        const result = await evaluateCall(sim, applied, inventory.principal, call);
        for (const problem of result.problems) report.failures.push(`${command}: ${describe(result.call)}: ${problem}`);
        if (result.decision === 'Allowed') report.allowed += 1;
        else report.failures.push(`${command}: ${describe(result.call)} is ${result.decision}, the code needs it`);
      }
    }
    for (const call of denied.filter((d) => d.principal === inventory.principal)) {
      const result = await evaluateCall(sim, applied, call.principal, call);
      for (const problem of result.problems) report.failures.push(`deny list: ${describe(result.call)}: ${problem}`);
      if (result.decision === 'Allowed') report.failures.push(`deny list: ${describe(result.call)} is ALLOWED`);
      else report.denied += 1;
    }
    reports.push(report);
  }
  return reports;
}

/** The source folders whose AWS calls count for a principal: its own sources and the shared library it imports. */
export const SOURCES: Record<string, string[]> = {
  auth: ['services/auth/src', 'packages/common/src'],
  upload: ['services/upload/src', 'packages/common/src'],
  'backup-sync': ['services/backup-sync/src', 'packages/common/src'],
  'sensitive-mover': ['services/sensitive-mover/src', 'packages/common/src'],
};

/**
 * The AWS requests the TypeScript sources under `dirs` can send, by name: every SDK command
 * constructed (`new XxxCommand(`), every SDK paginator (`paginateXxx(`, those the project defines
 * itself included by their own name), lib-storage's `new Upload(`, and the presigners
 * (`createPresignedPost(`, `getSignedUrl(`). Tests and declaration files are left out.
 */
export function sdkCommandsIn(root: string, dirs: string[]): Set<string> {
  const found = new Set<string>();
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) {
        if (!['test', 'tests', '__tests__', 'node_modules', 'dist'].includes(name)) walk(path);
      } else if (name.endsWith('.ts') && !name.endsWith('.d.ts') && !name.endsWith('.test.ts')) {
        const text = readFileSync(path, 'utf8');
        for (const m of text.matchAll(/\bnew ([A-Z][A-Za-z0-9]*Command)\(/g)) found.add(m[1]!);
        for (const m of text.matchAll(/\b(paginate[A-Z][A-Za-z0-9]*)\(/g)) found.add(m[1]!);
        for (const m of text.matchAll(/\bnew (Upload)\(/g)) found.add(m[1]!);
        for (const m of text.matchAll(/\b(createPresignedPost|getSignedUrl)\(/g)) found.add(m[1]!);
      }
    }
  };
  for (const dir of dirs) walk(join(root, dir));
  return found;
}
