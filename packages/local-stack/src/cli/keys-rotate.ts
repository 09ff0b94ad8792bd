import { SSMClient } from '@aws-sdk/client-ssm';
import { baseConfigProperties, createAwsClients, isDependencyOutage, loadConfig, resourceNameProperties, rotateSigningKey } from '@scs/common';
import { type Static, Type } from '@sinclair/typebox';
import { ResourceNames } from '../provision';

export const KEYS_ROTATE_HELP = `Usage: npm run keys:rotate [-- --local]

Creates a new ES256 token-signing key pair. The public key is published in SSM first
(JWT_PUBLIC_KEYS_PARAM), then the private key is stored as a KMS-encrypted SecureString
(JWT_SIGNING_KEY_PARAM, encrypted under SECRETS_KMS_KEY_ID); auth instances switch to it a few
seconds later, and the previous public keys stay trusted for ACCESS_TOKEN_TTL_SECONDS + 300 s so
tokens they signed keep working until they expire. Prints key ids only, never key material.

Target:
  (default)  real AWS, through the SDK's standard configuration: the credentials chain,
             AWS_REGION (or the profile's region), AWS_ENDPOINT_URL if set.
  --local    the local stack's emulator: AWS_ENDPOINT_URL if set, else
             http://127.0.0.1:$EMULATOR_PORT (4566), with the emulator's test credentials.
             Run "npm start" first.

Environment: JWT_SIGNING_KEY_PARAM (/scs/auth/jwt-signing-key), JWT_PUBLIC_KEYS_PARAM
(/scs/auth/jwt-public-keys), SECRETS_KMS_KEY_ID (alias/scs-secrets), ACCESS_TOKEN_TTL_SECONDS (900).
`;

const { AWS_ENDPOINT_URL, AWS_MAX_ATTEMPTS, AWS_REQUEST_TIMEOUT_MS } = baseConfigProperties;
const { JWT_SIGNING_KEY_PARAM, SECRETS_KMS_KEY_ID } = resourceNameProperties;
const { JWT_PUBLIC_KEYS_PARAM, ACCESS_TOKEN_TTL_SECONDS } = ResourceNames.properties;

export const KeysRotateConfig = Type.Object({
  AWS_REGION: Type.Optional(Type.String({ minLength: 1 })),
  AWS_ENDPOINT_URL,
  AWS_MAX_ATTEMPTS,
  AWS_REQUEST_TIMEOUT_MS,
  JWT_SIGNING_KEY_PARAM,
  JWT_PUBLIC_KEYS_PARAM,
  SECRETS_KMS_KEY_ID,
  ACCESS_TOKEN_TTL_SECONDS,
  EMULATOR_PORT: Type.Integer({ default: 4566, minimum: 1, maximum: 65535 }),
});
export type KeysRotateConfig = Static<typeof KeysRotateConfig>;

export interface Output {
  write(text: string): void;
}

/**
 * The settings for a run: `--local` with AWS_ENDPOINT_URL unset targets the stack's emulator
 * (http://127.0.0.1:$EMULATOR_PORT, us-east-1, test credentials); without `--local` nothing is added
 * and the SDK's standard configuration decides (real AWS). Mutates `env` on purpose: the SDK's
 * default credentials chain reads the process environment. Throws a ConfigError on a bad value.
 */
export function resolveSettings(argv: string[], env: NodeJS.ProcessEnv): { local: boolean; config: KeysRotateConfig } {
  const local = argv.includes('--local');
  if (local && !env.AWS_ENDPOINT_URL) {
    // The stack's emulator, as `npm start` provisions it (region us-east-1, test credentials).
    Object.assign(env, {
      AWS_ENDPOINT_URL: `http://127.0.0.1:${env.EMULATOR_PORT || '4566'}`,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
    });
    delete env.AWS_SESSION_TOKEN;
    delete env.AWS_PROFILE;
  } else if (local) {
    // An emulator of the caller's choosing: fill in only what is missing.
    env.AWS_REGION ||= 'us-east-1';
    if (!env.AWS_ACCESS_KEY_ID) Object.assign(env, { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' });
  }
  return { local, config: loadConfig(KeysRotateConfig, env) };
}

/**
 * `npm run keys:rotate`: rotates the token-signing key in the configured AWS account (or, with
 * `--local`, the local emulator). Returns the exit code. `env` is where settings are read and,
 * for `--local`, where the emulator's credentials are filled in for the SDK's default chain.
 */
export async function keysRotate(argv: string[], env: NodeJS.ProcessEnv, out: Output, err: Output): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    out.write(KEYS_ROTATE_HELP);
    return 0;
  }
  const unknown = argv.filter((arg) => arg !== '--local');
  if (unknown.length > 0) {
    err.write(`keys:rotate: unknown argument ${unknown.join(' ')}\n\n${KEYS_ROTATE_HELP}`);
    return 2;
  }
  const local = argv.includes('--local');
  let config: KeysRotateConfig;
  let region: string;
  try {
    ({ config } = resolveSettings(argv, env));
    // Not local: the region comes from the SDK's standard configuration (AWS_REGION or the profile).
    region = config.AWS_REGION ?? (await new SSMClient({}).config.region());
  } catch (e) {
    err.write(`keys:rotate: ${(e as Error).message}${local ? '' : ' (set AWS_REGION to the region the stack runs in)'}\n`);
    return 1;
  }

  const target = config.AWS_ENDPOINT_URL ? `${config.AWS_ENDPOINT_URL} (region ${region})` : `AWS region ${region}`;
  out.write(`Rotating the token-signing key in ${target}: ${config.JWT_SIGNING_KEY_PARAM}, ${config.JWT_PUBLIC_KEYS_PARAM}\n`);
  const aws = createAwsClients({ ...config, AWS_REGION: region });
  try {
    const result = await rotateSigningKey(
      aws.ssm,
      { signingKeyParam: config.JWT_SIGNING_KEY_PARAM, publicKeysParam: config.JWT_PUBLIC_KEYS_PARAM },
      { kmsKeyId: config.SECRETS_KMS_KEY_ID, retainSeconds: config.ACCESS_TOKEN_TTL_SECONDS + 300 },
    );
    out.write(`New signing key: ${result.kid} (auth signs with it from ${result.activateAt})\n`);
    out.write(
      result.retained.length > 0
        ? `Still trusted until the tokens they signed expire: ${result.retained.join(', ')}\n`
        : 'No earlier public key was published.\n',
    );
    return 0;
  } catch (e) {
    const hint =
      local && isDependencyOutage(e) ? ` (is the local stack running? start it with "npm start")` : '';
    err.write(`keys:rotate failed: ${(e as Error).name}: ${(e as Error).message}${hint}\n`);
    return 1;
  } finally {
    aws.destroy();
  }
}

if (require.main === module) {
  void keysRotate(process.argv.slice(2), process.env, process.stdout, process.stderr).then((code) => process.exit(code));
}
