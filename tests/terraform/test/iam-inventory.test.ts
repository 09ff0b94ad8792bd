import * as sim from '@cloud-copilot/iam-simulate';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type AppliedIam,
  DENIED,
  evaluateInventories,
  expand,
  type Inventory,
  INVENTORIES,
  readInventories,
  sdkCommandsIn,
  SOURCES,
} from '../src/iam-evaluation';

// IN-14: the inventories of AWS calls kept beside each service's code are complete (every
// request the sources can send is listed, or said never to be sent), and the evaluator they are
// checked with (the Terraform check evaluates them against the applied policies) tells allowed
// from denied the way IAM does.

const ROOT = join(__dirname, '../../..');
const inventories = readInventories(ROOT);

/** Every name the inventories may use: the services' environment and the extra names, as the root module's iam_evaluation output gives them. */
function namesTerraformGives(): string[] {
  const main = readFileSync(join(ROOT, 'terraform/main.tf'), 'utf8');
  const block = main.slice(main.indexOf('service_environment = {'));
  const env = [...block.slice(0, block.indexOf('\n  }')).matchAll(/^\s+([A-Z][A-Z0-9_]*)\s+=/gm)].map((m) => m[1]!);
  const outputs = readFileSync(join(ROOT, 'terraform/outputs.tf'), 'utf8');
  const extra = [...outputs.slice(outputs.indexOf('output "iam_evaluation"')).matchAll(/^\s+([A-Z][A-Z0-9_]*)\s+=/gm)].map((m) => m[1]!);
  return [...env, ...extra];
}

describe('the AWS call inventories (services/*/iam-inventory.json)', () => {
  it.each(Object.keys(INVENTORIES))('%s: lists every request its sources can send, and nothing they cannot', (principal) => {
    const inventory = inventories.find((i) => i.principal === principal)!;
    const sent = sdkCommandsIn(ROOT, SOURCES[principal]!);
    const listed = new Set(Object.keys(inventory.commands));
    expect({ missing: [...sent].filter((c) => !listed.has(c)).sort(), stale: [...listed].filter((c) => !sent.has(c)).sort() }).toEqual({ missing: [], stale: [] });
  });

  it('finds SDK commands, paginators, lib-storage uploads and presigners in a source tree', () => {
    // The scanner over this repository's own Terraform harness: it sends these, among others.
    const found = sdkCommandsIn(ROOT, ['tests/terraform/src']);
    expect([...found]).toEqual(expect.arrayContaining(['GetParameterCommand', 'AssumeRoleCommand', 'DeleteObjectsCommand']));
    expect([...sdkCommandsIn(ROOT, ['services/upload/src'])]).toEqual(expect.arrayContaining(['UploadPartCommand', 'createPresignedPost', 'getSignedUrl', 'paginateListObjectsV2']));
  });

  it('every call names an action, and only placeholders Terraform fills', () => {
    const names = Object.fromEntries(namesTerraformGives().map((n) => [n, `<${n}>`]));
    const applied = { account_id: '123456789012', region: 'eu-west-1', names };
    const problems: string[] = [];
    for (const inventory of inventories) {
      for (const [command, entry] of Object.entries(inventory.commands)) {
        if (!('calls' in entry)) {
          if (!entry.notSent.trim()) problems.push(`${inventory.principal} ${command}: notSent without a reason`);
          continue;
        }
        if (entry.calls.length === 0) problems.push(`${inventory.principal} ${command}: no calls`);
        for (const call of entry.calls) {
          if (!/^[a-z0-9-]+:[A-Za-z0-9]+$/.test(call.action)) problems.push(`${inventory.principal} ${command}: action ${call.action}`);
          try {
            expand(call.resource, applied);
            for (const value of Object.values(call.context ?? {})) expand(value, applied);
          } catch (err) {
            problems.push(`${inventory.principal} ${command}: ${(err as Error).message}`);
          }
        }
      }
    }
    for (const call of DENIED) {
      try {
        expand(call.resource, applied);
      } catch (err) {
        problems.push(`deny list: ${(err as Error).message}`);
      }
    }
    expect(problems).toEqual([]);
  });
});

describe('the evaluator (@cloud-copilot/iam-simulate over the applied policies)', () => {
  const account = '123456789012';
  const bucket = 'arn:aws:s3:::files';
  const role = `arn:aws:iam::${account}:role/uploader`;
  const allowPut = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['s3:PutObject'], Resource: `${bucket}/*` }] };
  const inventory: Inventory = {
    principal: 'uploader',
    commands: {
      UploadPartCommand: { calls: [{ action: 's3:PutObject', resource: 'arn:aws:s3:::${PRIMARY_BUCKET}/users/u/f', why: 'a part carries no encryption header' }] },
      PutObjectCommand: { calls: [{ action: 's3:PutObject', resource: 'arn:aws:s3:::${PRIMARY_BUCKET}/users/u/f', context: { 's3:x-amz-server-side-encryption': 'AES256' }, why: 'SSE-S3' }] },
    },
  };
  const applied = (bucketPolicy: unknown): AppliedIam => ({
    account_id: account,
    region: 'us-east-1',
    principals: { uploader: { role_arn: role, policies: [allowPut] } },
    resource_policies: { [bucket]: bucketPolicy },
    names: { PRIMARY_BUCKET: 'files' },
  });
  const denyStatement = (condition: unknown) => ({ Effect: 'Deny', Principal: '*', Action: 's3:PutObject', Resource: `${bucket}/*`, Condition: condition });

  it('IN-03: a denial written with StringNotEqualsIfExists refuses UploadPart (no header): the evaluator sees it', async () => {
    const before = { Version: '2012-10-17', Statement: [denyStatement({ StringNotEqualsIfExists: { 's3:x-amz-server-side-encryption': 'AES256' } })] };
    const [report] = await evaluateInventories(sim, applied(before), [inventory], []);
    expect(report!.failures).toEqual([expect.stringContaining('UploadPartCommand: s3:PutObject')]);
    expect(report!.failures[0]).toContain('ExplicitlyDenied');
  });

  it('IN-03: a denial that needs the header present (Null = false) lets UploadPart through and still refuses a wrong header', async () => {
    const after = {
      Version: '2012-10-17',
      Statement: [denyStatement({ Null: { 's3:x-amz-server-side-encryption': 'false' }, StringNotEquals: { 's3:x-amz-server-side-encryption': 'AES256' } })],
    };
    const wrong = [{ principal: 'uploader', action: 's3:PutObject', resource: 'arn:aws:s3:::${PRIMARY_BUCKET}/users/u/f', context: { 's3:x-amz-server-side-encryption': 'aws:kms' }, why: 'wrong SSE' }];
    const [report] = await evaluateInventories(sim, applied(after), [inventory], wrong);
    expect(report).toEqual({ principal: 'uploader', allowed: 2, denied: 1, failures: [] });
  });

  it('IN-14: an inventory call the policies deny, or a deny-list call they allow, is a failure', async () => {
    const open = { Version: '2012-10-17', Statement: [] };
    const needsRead: Inventory = {
      principal: 'uploader',
      commands: { GetObjectCommand: { calls: [{ action: 's3:GetObject', resource: 'arn:aws:s3:::${PRIMARY_BUCKET}/users/u/f', why: 'a download' }] } },
    };
    const leak = [{ principal: 'uploader', action: 's3:PutObject', resource: 'arn:aws:s3:::${PRIMARY_BUCKET}/backups/x', why: 'should be denied' }];
    const [report] = await evaluateInventories(sim, applied(open), [needsRead], leak);
    expect(report!.failures).toEqual([
      expect.stringMatching(/^GetObjectCommand: s3:GetObject .* is ImplicitlyDenied, the code needs it$/),
      expect.stringMatching(/^deny list: s3:PutObject .* is ALLOWED$/),
    ]);
  });

  it('IN-14: a KMS call is weighed against the key policy and the encryption context the request carries', async () => {
    const key = `arn:aws:kms:us-east-1:${account}:key/k`;
    const keyPolicy = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${account}:root` }, Action: 'kms:Decrypt', Resource: '*' }] };
    const identity = {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: 'kms:Decrypt', Resource: key, Condition: { StringLike: { 'kms:EncryptionContext:aws:s3:arn': [bucket, `${bucket}/*`] } } }],
    };
    const kms: AppliedIam = { account_id: account, region: 'us-east-1', principals: { uploader: { role_arn: role, policies: [identity] } }, resource_policies: { [key]: keyPolicy }, names: { KEY: key } };
    const calls = (context: string) => ({
      principal: 'uploader',
      commands: { GetObjectCommand: { calls: [{ action: 'kms:Decrypt', resource: '${KEY}', context: { 'kms:EncryptionContext:aws:s3:arn': context }, why: 'decrypt' }] } },
    });
    expect((await evaluateInventories(sim, kms, [calls(bucket)], []))[0]!.failures).toEqual([]);
    expect((await evaluateInventories(sim, kms, [calls('arn:aws:s3:::other')], []))[0]!.failures).toEqual([expect.stringContaining('ImplicitlyDenied')]);
  });
});
