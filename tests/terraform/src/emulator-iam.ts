import {
  CreateAccessKeyCommand,
  CreateUserCommand,
  DeleteAccessKeyCommand,
  DeleteUserCommand,
  DeleteUserPolicyCommand,
  GetPolicyCommand,
  GetPolicyVersionCommand,
  GetRolePolicyCommand,
  IAMClient,
  ListAttachedRolePoliciesCommand,
  ListRolePoliciesCommand,
  PutUserPolicyCommand,
} from '@aws-sdk/client-iam';
import { ListBucketsCommand, S3Client } from '@aws-sdk/client-s3';

/**
 * The end-to-end path under IAM enforced by the emulator (IN-14), each service with credentials of
 * its own role.
 *
 * moto enforces IAM once told to (`POST /moto-api/reset-auth` with the number of requests it lets
 * through first, the run-time form of INITIAL_NO_AUTH_ACTION_COUNT): every request must then be
 * signed by a known access key, and the action it makes must be allowed by that identity's
 * policies. What moto evaluates, and so what this proves:
 * - the signature and the access key of every request (no service falls back to other credentials);
 * - the action of every AWS call each service makes on the path, against the Allow statements of
 *   the role Terraform gave that service (a call its role lacks is refused: AccessDenied);
 * - for S3 the bucket and key ARN of the request, for SQS the queue ARN, against the statements'
 *   resources.
 * What it does not (the IAM evaluation of the applied policies with a real evaluator covers it):
 * conditions (moto turns an Allow whose condition it cannot read into a Deny), resource ARNs of
 * DynamoDB, KMS and SSM requests (moto evaluates them against `*`), resource policies (bucket, key
 * and queue policies), and presigned URLs (moto reads the signature from the Authorization header
 * only, so a presigned request is let through with enforcement paused).
 *
 * moto enforces IAM for users and assumed roles alike; an IAM user per service is used, holding
 * its role's policies projected onto what moto evaluates (`projectForEmulator`), so the service
 * needs no session token and the role itself stays as Terraform applied it.
 */

/** An IAM policy document as IAM stores it (the fields this module reads). */
export interface PolicyDocument {
  Version?: string;
  Statement: PolicyStatement | PolicyStatement[];
}

export interface PolicyStatement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action?: string | string[];
  NotAction?: string | string[];
  Resource?: string | string[];
  NotResource?: string | string[];
  Condition?: Record<string, unknown>;
  Principal?: unknown;
}

/** Services whose requests moto evaluates against their resource ARN; others against `*`. */
const RESOURCE_AWARE = new Set(['s3', 'sqs']);

/**
 * moto names many requests by their API operation where IAM names the permission they need (a
 * multipart upload's steps are `s3:PutObject` on AWS, `s3:CreateMultipartUpload` ... in moto), and
 * checks a few requests against another resource. For each IAM action, the names moto checks
 * instead (moto 5: s3/responses.py, sqs/responses.py), and the resource it checks them on when
 * that differs: the bucket of an object request, or `*` (a queue looked up by name).
 */
const MOTO_NAMES: Record<string, { actions: string[]; resource?: 'bucket' | 'any' }[]> = {
  's3:PutObject': [{ actions: ['s3:CreateMultipartUpload', 's3:CompleteMultipartUpload', 's3:UploadPartCopy', 's3:CopyObject'] }],
  's3:GetObject': [{ actions: ['s3:GetObjectAttributes'] }],
  's3:GetObjectVersion': [{ actions: ['s3:GetObjectAttributes'] }],
  // A tagging request naming a version is `s3:GetObjectVersion` to moto.
  's3:GetObjectVersionTagging': [{ actions: ['s3:GetObjectVersion'] }],
  's3:DeleteObject': [{ actions: ['s3:DeleteObjects'], resource: 'bucket' }],
  's3:DeleteObjectVersion': [{ actions: ['s3:DeleteObjects'], resource: 'bucket' }],
  's3:ListBucket': [{ actions: ['s3:ListObjects', 's3:ListObjectsV2', 's3:HeadBucket'] }],
  's3:ListBucketVersions': [{ actions: ['s3:ListObjectVersions'] }],
  's3:ListMultipartUploadParts': [{ actions: ['s3:ListParts'] }],
  's3:ListBucketMultipartUploads': [{ actions: ['s3:ListMultipartUploads'] }],
  // GetQueueUrl names the queue in its body, which moto does not read for the resource.
  'sqs:GetQueueUrl': [{ actions: ['sqs:GetQueueUrl'], resource: 'any' }],
  // IAM checks a transaction's items by their own actions; moto checks the transaction.
  'dynamodb:PutItem': [{ actions: ['dynamodb:TransactWriteItems'] }],
  'dynamodb:UpdateItem': [{ actions: ['dynamodb:TransactWriteItems'] }],
  'dynamodb:DeleteItem': [{ actions: ['dynamodb:TransactWriteItems'] }],
  'dynamodb:ConditionCheckItem': [{ actions: ['dynamodb:TransactWriteItems'] }],
  'dynamodb:GetItem': [{ actions: ['dynamodb:TransactGetItems'] }],
};

/** `arn:aws:s3:::bucket/key*` -> `arn:aws:s3:::bucket`. */
const bucketOf = (arn: string) => (arn.startsWith('arn:aws:s3:::') ? arn.split('/', 1)[0]! : arn);

const list = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/**
 * A role's policy as moto can evaluate it, granting no less than on AWS for the actions it names:
 * an Allow keeps its actions without its condition, and its resources where moto compares them (S3
 * and SQS ARNs), `*` elsewhere; `NotResource` becomes `*`. Each Allow of an action moto knows by
 * other names (`MOTO_NAMES`) is followed by an Allow of those names on the same resources. A Deny with a condition is dropped (moto
 * would apply it unconditionally); a Deny without one is kept as it is. Returns undefined when no
 * statement is left.
 */
export function projectForEmulator(document: PolicyDocument): PolicyDocument | undefined {
  const statements: PolicyStatement[] = [];
  for (const statement of list(document.Statement as never) as unknown as PolicyStatement[]) {
    if (statement.Effect === 'Deny') {
      if (!statement.Condition) statements.push(statement);
      continue;
    }
    const { Condition: _condition, NotResource, Resource, ...rest } = statement;
    const resources = NotResource !== undefined ? ['*'] : [...new Set(list(Resource).map((arn) => (RESOURCE_AWARE.has(arn.split(':')[2] ?? '') ? arn : '*')))];
    statements.push({ ...rest, Resource: resources });
    if (statement.NotAction !== undefined) continue;
    for (const action of list(statement.Action)) {
      for (const alias of MOTO_NAMES[action] ?? []) {
        const on = alias.resource === 'bucket' ? [...new Set(resources.map(bucketOf))] : alias.resource === 'any' ? ['*'] : resources;
        statements.push({ Effect: 'Allow', Action: alias.actions, Resource: on });
      }
    }
  }
  return statements.length > 0 ? { Version: '2012-10-17', Statement: statements } : undefined;
}

/** Static credentials of an IAM user of the emulator. */
export interface EmulatorCredentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/** The IAM users made for one run, to remove afterwards. */
export interface EmulatorIdentities {
  /** By the name given in `roles` (the service). */
  credentials: Record<string, EmulatorCredentials>;
  remove(): Promise<void>;
}

/** The inline and managed policy documents of a role, as the emulator holds them. */
async function rolePolicies(iam: IAMClient, RoleName: string): Promise<PolicyDocument[]> {
  const documents: string[] = [];
  const inline = await iam.send(new ListRolePoliciesCommand({ RoleName }));
  for (const PolicyName of inline.PolicyNames ?? []) {
    const got = await iam.send(new GetRolePolicyCommand({ RoleName, PolicyName }));
    if (got.PolicyDocument) documents.push(got.PolicyDocument);
  }
  const attached = await iam.send(new ListAttachedRolePoliciesCommand({ RoleName }));
  for (const { PolicyArn } of attached.AttachedPolicies ?? []) {
    const policy = await iam.send(new GetPolicyCommand({ PolicyArn }));
    const version = await iam.send(new GetPolicyVersionCommand({ PolicyArn, VersionId: policy.Policy?.DefaultVersionId }));
    if (version.PolicyVersion?.Document) documents.push(version.PolicyVersion.Document);
  }
  // IAM answers documents URL-encoded.
  return documents.map((d) => JSON.parse(d.trimStart().startsWith('{') ? d : decodeURIComponent(d)) as PolicyDocument);
}

/**
 * For each `{service: roleName}`, an IAM user `<roleName>-emulator` holding the role's policies
 * projected for the emulator, with an access key. Call with enforcement off (the emulator's own
 * credentials). Throws when a role does not exist or grants nothing.
 */
export async function identitiesOfRoles(endpoint: string, region: string, roles: Record<string, string>): Promise<EmulatorIdentities> {
  const iam = new IAMClient({ endpoint, region, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  const made: { UserName: string; AccessKeyId?: string; policies: string[] }[] = [];
  const credentials: Record<string, EmulatorCredentials> = {};
  const remove = async () => {
    for (const user of made.splice(0)) {
      for (const PolicyName of user.policies) await iam.send(new DeleteUserPolicyCommand({ UserName: user.UserName, PolicyName }));
      if (user.AccessKeyId) await iam.send(new DeleteAccessKeyCommand({ UserName: user.UserName, AccessKeyId: user.AccessKeyId }));
      await iam.send(new DeleteUserCommand({ UserName: user.UserName }));
    }
  };
  try {
    for (const [service, RoleName] of Object.entries(roles)) {
      const projected = (await rolePolicies(iam, RoleName)).map(projectForEmulator).filter((d): d is PolicyDocument => d !== undefined);
      if (projected.length === 0) throw new Error(`the role ${RoleName} grants nothing the emulator could evaluate`);
      const user = { UserName: `${RoleName}-emulator`, policies: [] as string[], AccessKeyId: undefined as string | undefined };
      await iam.send(new CreateUserCommand({ UserName: user.UserName }));
      made.push(user);
      for (const [i, document] of projected.entries()) {
        const PolicyName = `projected-${i}`;
        await iam.send(new PutUserPolicyCommand({ UserName: user.UserName, PolicyName, PolicyDocument: JSON.stringify(document) }));
        user.policies.push(PolicyName);
      }
      const key = await iam.send(new CreateAccessKeyCommand({ UserName: user.UserName }));
      if (!key.AccessKey?.AccessKeyId || !key.AccessKey.SecretAccessKey) throw new Error(`the emulator gave ${user.UserName} no access key`);
      user.AccessKeyId = key.AccessKey.AccessKeyId;
      credentials[service] = { accessKeyId: key.AccessKey.AccessKeyId, secretAccessKey: key.AccessKey.SecretAccessKey };
    }
    return {
      credentials,
      remove: async () => {
        try {
          await remove();
        } finally {
          iam.destroy();
        }
      },
    };
  } catch (err) {
    await remove().catch(() => undefined);
    iam.destroy();
    throw err;
  }
}

/**
 * Turns the emulator's IAM enforcement on (every request from now on must be signed by a known key
 * and allowed) or off (moto's default: nothing checked). Turning it on is verified: a request with
 * the emulator's own credentials (no IAM identity) must then be refused, else this throws.
 */
export async function setIamEnforcement(endpoint: string, on: boolean): Promise<void> {
  const res = await fetch(`${endpoint}/moto-api/reset-auth`, { method: 'POST', body: on ? '0' : 'inf', signal: AbortSignal.timeout(30_000) });
  if (!res.ok) throw new Error(`the emulator refused to turn IAM enforcement ${on ? 'on' : 'off'}: HTTP ${res.status} ${await res.text()}`);
  if (!on) return;
  const anonymous = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'test', secretAccessKey: 'test' }, maxAttempts: 1 });
  try {
    const refused = await anonymous.send(new ListBucketsCommand({})).then(
      () => undefined,
      (err: Error) => err.name,
    );
    if (!refused) throw new Error('IAM enforcement is not in effect: the emulator answered a request signed by no IAM identity');
  } finally {
    anonymous.destroy();
  }
}
