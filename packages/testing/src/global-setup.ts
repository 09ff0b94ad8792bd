import { createAwsClients, loadConfig } from '@scs/common';
import { resolve } from 'node:path';
import { freePort, type RunningEmulator, startEmulator } from '@scs/local-stack/emulator';
import { provision, ResourceNames } from '@scs/local-stack/provision';

declare global {
  var __SCS_EMULATOR__: RunningEmulator | undefined;
}

/**
 * Starts one AWS emulator for the whole test run on a free port (so a running `npm start` on
 * 4566 is left alone), provisions it with the same code as `npm start`, and points every test
 * worker at it through the SDK's standard environment variables.
 */
export default async function globalSetup(): Promise<void> {
  const repoRoot = resolve(__dirname, '../../..');
  const emulator = await startEmulator(repoRoot, await freePort());
  globalThis.__SCS_EMULATOR__ = emulator;
  Object.assign(process.env, {
    AWS_ENDPOINT_URL: emulator.endpoint,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_MAX_ATTEMPTS: '2',
  });
  const aws = createAwsClients({
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT_URL: emulator.endpoint,
    AWS_MAX_ATTEMPTS: 3,
    AWS_REQUEST_TIMEOUT_MS: 10_000,
  });
  try {
    await provision(aws, loadConfig(ResourceNames, process.env));
  } finally {
    aws.destroy();
  }
}
