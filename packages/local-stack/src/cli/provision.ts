import { createAwsClients, loadConfig, baseConfigProperties } from '@scs/common';
import { Type } from '@sinclair/typebox';
import { provision, ResourceNames } from '../provision';

/** `node packages/local-stack/dist/cli/provision.js`: provisions the local emulator's resources (idempotent). */
async function main(): Promise<void> {
  const { AWS_REGION, AWS_ENDPOINT_URL, AWS_MAX_ATTEMPTS, AWS_REQUEST_TIMEOUT_MS } = baseConfigProperties;
  const config = loadConfig(
    Type.Object({ ...ResourceNames.properties, AWS_REGION, AWS_ENDPOINT_URL, AWS_MAX_ATTEMPTS, AWS_REQUEST_TIMEOUT_MS }),
    process.env,
  );
  const aws = createAwsClients(config);
  try {
    await provision(aws, config, { info: (msg) => process.stdout.write(`provision: ${msg}\n`) });
  } finally {
    aws.destroy();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`provision failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
