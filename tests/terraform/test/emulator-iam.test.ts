import { CreateRoleCommand, IAMClient, PutRolePolicyCommand } from '@aws-sdk/client-iam';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { resolve } from 'node:path';
import { freePort, type RunningEmulator, startEmulator } from '@scs/local-stack/emulator';
import { identitiesOfRoles, projectForEmulator, setIamEnforcement } from '../src/emulator-iam';

const REPO_ROOT = resolve(__dirname, '../../..');
const ROOT = { accessKeyId: 'test', secretAccessKey: 'test' };

describe("the emulator's IAM enforcement, with a role's policies projected onto what it evaluates", () => {
  it('IN-14: the projection keeps actions, adds the names moto knows them by, drops conditions, keeps S3 and SQS resources and widens the others to *', () => {
    expect(
      projectForEmulator({
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Action: ['s3:PutObject'], Resource: ['arn:aws:s3:::files/users/*'], Condition: { StringEquals: { 's3:x-amz-server-side-encryption': 'aws:kms' } } },
          { Effect: 'Allow', Action: 'dynamodb:GetItem', Resource: ['arn:aws:dynamodb:us-east-1:1:table/users', 'arn:aws:dynamodb:us-east-1:1:table/files'] },
          { Effect: 'Allow', Action: 'sqs:ReceiveMessage', Resource: 'arn:aws:sqs:us-east-1:1:backup' },
          { Effect: 'Allow', Action: ['s3:DeleteObjectVersion'], Resource: ['arn:aws:s3:::files/users/*', 'arn:aws:s3:::vault/users/*'] },
          { Effect: 'Allow', Action: 'kms:Decrypt', NotResource: 'arn:aws:kms:us-east-1:1:key/other' },
          { Effect: 'Deny', Action: 's3:*', Resource: '*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } },
          { Effect: 'Deny', Action: 'kms:ScheduleKeyDeletion', Resource: '*' },
        ],
      }),
    ).toEqual({
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: ['s3:PutObject'], Resource: ['arn:aws:s3:::files/users/*'] },
        { Effect: 'Allow', Action: ['s3:CreateMultipartUpload', 's3:CompleteMultipartUpload', 's3:UploadPartCopy', 's3:CopyObject'], Resource: ['arn:aws:s3:::files/users/*'] },
        { Effect: 'Allow', Action: 'dynamodb:GetItem', Resource: ['*'] },
        { Effect: 'Allow', Action: ['dynamodb:TransactGetItems'], Resource: ['*'] },
        { Effect: 'Allow', Action: 'sqs:ReceiveMessage', Resource: ['arn:aws:sqs:us-east-1:1:backup'] },
        { Effect: 'Allow', Action: ['s3:DeleteObjectVersion'], Resource: ['arn:aws:s3:::files/users/*', 'arn:aws:s3:::vault/users/*'] },
        { Effect: 'Allow', Action: ['s3:DeleteObjects'], Resource: ['arn:aws:s3:::files', 'arn:aws:s3:::vault'] },
        { Effect: 'Allow', Action: 'kms:Decrypt', Resource: ['*'] },
        { Effect: 'Deny', Action: 'kms:ScheduleKeyDeletion', Resource: '*' },
      ],
    });
    expect(projectForEmulator({ Statement: [{ Effect: 'Deny', Action: 's3:*', Resource: '*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }] })).toBeUndefined();
  });

  describe('against an emulator of its own (enforcement applies to every client of it)', () => {
    let emulator: RunningEmulator;
    beforeAll(async () => {
      emulator = await startEmulator(REPO_ROOT, await freePort());
    }, 120_000);
    afterAll(async () => {
      await emulator?.stop();
    });

    it("IN-14: under enforcement, a service under its own role's user may make the calls its role grants, and is refused the others", async () => {
      const { endpoint } = emulator;
      const region = 'us-east-1';
      const root = new S3Client({ endpoint, region, forcePathStyle: true, credentials: ROOT });
      const iam = new IAMClient({ endpoint, region, credentials: ROOT });
      await root.send(new CreateBucketCommand({ Bucket: 'granted' }));
      await root.send(new CreateBucketCommand({ Bucket: 'other' }));
      await iam.send(
        new CreateRoleCommand({
          RoleName: 'reader',
          AssumeRolePolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' }] }),
        }),
      );
      await iam.send(
        new PutRolePolicyCommand({
          RoleName: 'reader',
          PolicyName: 'objects',
          PolicyDocument: JSON.stringify({
            Version: '2012-10-17',
            Statement: [{ Effect: 'Allow', Action: ['s3:PutObject', 's3:GetObject'], Resource: 'arn:aws:s3:::granted/users/*', Condition: { StringEquals: { 's3:x-amz-server-side-encryption': 'AES256' } } }],
          }),
        }),
      );
      const identities = await identitiesOfRoles(endpoint, region, { svc: 'reader' });
      const own = new S3Client({ endpoint, region, forcePathStyle: true, credentials: identities.credentials.svc });
      const outcome = (p: Promise<unknown>) => p.then(() => 'allowed', (err: Error) => err.name);
      try {
        await setIamEnforcement(endpoint, true);
        expect(await outcome(own.send(new PutObjectCommand({ Bucket: 'granted', Key: 'users/a', Body: 'a' })))).toBe('allowed');
        expect(await outcome(own.send(new GetObjectCommand({ Bucket: 'granted', Key: 'users/a' })))).toBe('allowed');
        expect(await outcome(own.send(new PutObjectCommand({ Bucket: 'other', Key: 'users/a', Body: 'a' })))).toBe('AccessDenied');
        expect(await outcome(own.send(new PutObjectCommand({ Bucket: 'granted', Key: 'elsewhere/a', Body: 'a' })))).toBe('AccessDenied');
        // The emulator's own credentials are no identity once enforcement is on.
        expect(await outcome(root.send(new GetObjectCommand({ Bucket: 'granted', Key: 'users/a' })))).toBe('InvalidAccessKeyId');
        await setIamEnforcement(endpoint, false);
        expect(await outcome(root.send(new GetObjectCommand({ Bucket: 'granted', Key: 'users/a' })))).toBe('allowed');
      } finally {
        await setIamEnforcement(endpoint, false);
        await identities.remove();
        own.destroy();
        root.destroy();
        iam.destroy();
      }
    }, 60_000);
  });
});
