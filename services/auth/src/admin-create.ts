import { SSMClient } from '@aws-sdk/client-ssm';
import { createAwsClients, isDependencyOutage, loadConfig } from '@scs/common';
import { buildApp } from './app';
import { AuthConfig } from './config';

export const ADMIN_CREATE_HELP = `Usage: npm run admin:create -- <username> [--local] < password-file
       SCS_ADMIN_PASSWORD=... npm run admin:create -- <username> [--local]

Creates the admin account <username> in the users table, or sets its password if it is an admin
already (its sessions end when the password changes). An existing account that is not an admin is
refused unless SCS_ADMIN_PROMOTE_EXISTING=true. This is what the auth service does at start-up
with SCS_ADMIN_USERNAME / SCS_ADMIN_PASSWORD, run once by an operator instead: no password ever
goes into Terraform (its state), the instances' configuration or a command line.

The password is read from SCS_ADMIN_PASSWORD if set, else from standard input (one line; pipe
it from a password manager or a file only you can read).

Target:
  (default)  real AWS, through the SDK's standard configuration: the credentials chain,
             AWS_REGION (or the profile's region), AWS_ENDPOINT_URL if set.
  --local    the local stack's emulator: AWS_ENDPOINT_URL if set, else
             http://127.0.0.1:$EMULATOR_PORT (4566), with the emulator's test credentials
             (as npm run keys:rotate -- --local). Run "npm start" first.

Environment: USERS_TABLE, SESSIONS_TABLE, THROTTLE_TABLE, JWT_SIGNING_KEY_PARAM (the auth
service's settings; on AWS the values of Terraform's service_environment output). The signing
key must exist (npm run keys:rotate).
`;

export interface Output {
  write(text: string): void;
}

/**
 * `--local`: the local stack's emulator, as `npm run keys:rotate -- --local` targets it
 * (packages/local-stack/src/cli/keys-rotate.ts): AWS_ENDPOINT_URL if set, else http://127.0.0.1:$EMULATOR_PORT,
 * region us-east-1 and the emulator's test credentials where missing. Mutates `env` on purpose:
 * the SDK's default credentials chain reads the process environment.
 */
export function useLocalEmulator(env: NodeJS.ProcessEnv): void {
  if (!env.AWS_ENDPOINT_URL) {
    Object.assign(env, { AWS_ENDPOINT_URL: `http://127.0.0.1:${env.EMULATOR_PORT || '4566'}`, AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' });
    delete env.AWS_SESSION_TOKEN;
    delete env.AWS_PROFILE;
    return;
  }
  env.AWS_REGION ||= 'us-east-1';
  if (!env.AWS_ACCESS_KEY_ID) Object.assign(env, { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' });
}

/** Everything standard input holds, as text (the password file or pipe). */
export async function readAll(input: AsyncIterable<Buffer | string>): Promise<string> {
  let text = '';
  for await (const chunk of input) text += chunk.toString();
  return text;
}

/**
 * `npm run admin:create`: creates (or re-keys) an admin account through the auth service's own
 * seeding (`AuthService.seedAdmin`: argon2id hash, the admin-name and password rules, sessions
 * ended on a new password). `env` is read for settings and, with `--local`, filled with the
 * emulator's; `stdin` gives the password when SCS_ADMIN_PASSWORD is unset. Returns the exit code:
 * 0 done, 1 failed, 2 bad usage or a refused name or password.
 */
export async function adminCreate(argv: string[], env: NodeJS.ProcessEnv, stdin: () => Promise<string>, out: Output, err: Output): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    out.write(ADMIN_CREATE_HELP);
    return 0;
  }
  const positional = argv.filter((arg) => !arg.startsWith('--'));
  const unknown = argv.filter((arg) => arg.startsWith('--') && arg !== '--local');
  if (unknown.length > 0 || positional.length !== 1) {
    err.write(`admin:create: ${unknown.length ? `unknown argument ${unknown.join(' ')}` : 'give exactly one username'}\n\n${ADMIN_CREATE_HELP}`);
    return 2;
  }
  const username = positional[0]!;
  const local = argv.includes('--local');
  const password = env.SCS_ADMIN_PASSWORD ?? (await stdin()).replace(/\r?\n$/, '');
  if (!password) {
    err.write('admin:create: no password: set SCS_ADMIN_PASSWORD or pipe it on standard input\n');
    return 2;
  }

  let config: AuthConfig;
  let region: string;
  try {
    if (local) useLocalEmulator(env);
    config = loadConfig(AuthConfig, { ...env, LOG_LEVEL: 'silent', SCS_ADMIN_USERNAME: undefined });
    region = config.AWS_REGION ?? (await new SSMClient({}).config.region());
  } catch (e) {
    err.write(`admin:create: ${(e as Error).message}${local ? '' : ' (set AWS_REGION to the region the stack runs in)'}\n`);
    return 1;
  }
  out.write(`Creating the admin ${username} in ${config.USERS_TABLE} (${config.AWS_ENDPOINT_URL ?? `AWS region ${region}`})\n`);
  const aws = createAwsClients({ ...config, AWS_REGION: region });
  try {
    const app = await buildApp({ ...config, AWS_REGION: region }, { aws });
    try {
      const { user, outcome } = await app.authService.seedAdmin(username, password);
      out.write(`Admin ${user.username} (${user.id}): ${outcome.replace('_', ' ')}\n`);
      return 0;
    } finally {
      await app.close();
    }
  } catch (e) {
    const error = e as Error & { statusCode?: number };
    if (error.statusCode && error.statusCode < 500) {
      err.write(`admin:create: ${error.message}\n`);
      return 2;
    }
    const hint = local && isDependencyOutage(e) ? ' (is the local stack running? start it with "npm start")' : '';
    err.write(`admin:create failed: ${error.name}: ${error.message}${hint}\n`);
    return 1;
  } finally {
    aws.destroy();
  }
}

if (require.main === module) {
  void adminCreate(process.argv.slice(2), process.env, () => readAll(process.stdin), process.stdout, process.stderr).then((code) => process.exit(code));
}
