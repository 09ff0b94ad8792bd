import { baseConfigProperties, createAwsClients, loadConfig, rotateSigningKey } from '@scs/common';
import { Type } from '@sinclair/typebox';
import { ResourceNames } from '../provision';

const HELP = `Usage: npm run keys:rotate [-- --local]

Creates a new ES256 token-signing key pair: the public key is published in SSM first, the
private key is stored as a KMS-encrypted SecureString, auth instances start signing with it
shortly after, and the previous public key stays trusted for ACCESS_TOKEN_TTL_SECONDS + 300 s.

Without --local it uses the AWS SDK's standard configuration (credentials chain, AWS_REGION,
AWS_ENDPOINT_URL). With --local and no AWS_ENDPOINT_URL it targets the local stack's emulator
at http://127.0.0.1:4566. Only key ids are printed, never key material.`;

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`${HELP}\n`);
    return;
  }
  const env = { ...process.env };
  if (args.includes('--local') && !env.AWS_ENDPOINT_URL) {
    Object.assign(env, { AWS_ENDPOINT_URL: 'http://127.0.0.1:4566', AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' });
  }
  const { AWS_REGION, AWS_ENDPOINT_URL, AWS_MAX_ATTEMPTS, AWS_REQUEST_TIMEOUT_MS } = baseConfigProperties;
  const config = loadConfig(
    Type.Object({ ...ResourceNames.properties, AWS_REGION, AWS_ENDPOINT_URL, AWS_MAX_ATTEMPTS, AWS_REQUEST_TIMEOUT_MS }),
    env,
  );
  const aws = createAwsClients(config);
  try {
    const result = await rotateSigningKey(
      aws.ssm,
      { signingKeyParam: config.JWT_SIGNING_KEY_PARAM, publicKeysParam: config.JWT_PUBLIC_KEYS_PARAM },
      { kmsKeyId: config.SECRETS_KMS_KEY_ID, retainSeconds: config.ACCESS_TOKEN_TTL_SECONDS + 300 },
    );
    process.stdout.write(
      `New signing key ${result.kid}: signs from ${result.activateAt}; still trusted: ${result.retained.join(', ') || 'none'}\n`,
    );
  } finally {
    aws.destroy();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`keys:rotate failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
