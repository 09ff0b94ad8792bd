import { type AwsClients, createAwsClients, loadConfig } from '@scs/common';
import { randomBytes } from 'node:crypto';
import { provision, ResourceNames } from '@scs/local-stack/provision';

/**
 * Buckets, queues and the event rule of one test file, under names no other test file uses, so
 * that test files running in parallel against the one emulator never consume each other's events.
 * Keys, tables and the signing key are the shared ones (already provisioned by the global setup).
 */
export async function isolatedResources(tag: string, overrides: Partial<Record<keyof ResourceNames, string>> = {}): Promise<ResourceNames> {
  const id = `${tag}-${randomBytes(3).toString('hex')}`.toLowerCase();
  const names = loadConfig(ResourceNames, {
    ...process.env,
    PRIMARY_BUCKET: `t-${id}-primary`,
    SENSITIVE_BUCKET: `t-${id}-sensitive`,
    BACKUP_BUCKET: `t-${id}-backup`,
    OBJECT_EVENTS_QUEUE: `t-${id}-object-events`,
    BACKUP_EVENTS_QUEUE: `t-${id}-backup-events`,
    ...overrides,
  });
  const aws = testAwsClients();
  try {
    await provision(aws, names);
  } finally {
    aws.destroy();
  }
  return names;
}

/** Clients for the tests' emulator (the global setup points the SDK's standard variables at it). */
export function testAwsClients(maxAttempts = 3): AwsClients {
  return createAwsClients({
    AWS_REGION: process.env.AWS_REGION ?? 'us-east-1',
    AWS_ENDPOINT_URL: process.env.AWS_ENDPOINT_URL,
    AWS_MAX_ATTEMPTS: maxAttempts,
    AWS_REQUEST_TIMEOUT_MS: 30_000,
  });
}

/** Resource names as environment variables (for a child process or `loadConfig`). */
export function asEnv(names: ResourceNames): Record<string, string> {
  return Object.fromEntries(Object.entries(names).map(([k, v]) => [k, String(v)]));
}
