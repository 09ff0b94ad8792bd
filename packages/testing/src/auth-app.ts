import { type AwsClients, createAwsClients, loadConfig } from '@scs/common';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { buildApp } from '@scs/auth';
import { AuthConfig } from '@scs/auth/config';

export const PASSWORD = 'correct horse battery staple 42';

export const uniqueName = (prefix = 'u') => `${prefix}${randomUUID().replace(/-/g, '').slice(0, 12)}`;

export function testConfig(overrides: Record<string, string> = {}): AuthConfig {
  // Many suites fail logins from the same loopback address: the per-address limit is raised unless a test sets it.
  return loadConfig(AuthConfig, {
    ...process.env,
    COOKIE_SECURE: 'false',
    LOG_LEVEL: 'info',
    LOGIN_MAX_FAILURES_PER_ADDRESS: '100000',
    REGISTER_RATE_LIMIT_PER_MINUTE: '100000',
    REGISTER_RATE_LIMIT_PER_HOUR: '100000',
    REFRESH_RATE_LIMIT_PER_MINUTE: '100000',
    HASH_CONCURRENCY_PER_ADDRESS: '100000',
    ...overrides,
  });
}

export interface TestApp {
  /** The auth app, with its decorations (`authService`). */
  app: Awaited<ReturnType<typeof buildApp>>;
  aws: AwsClients;
  config: AuthConfig;
  /** Every log line the app wrote, parsed. */
  logs: Record<string, unknown>[];
  rawLogs: string[];
}

/** A real auth app against the test emulator, with its log lines captured. */
export async function buildTestApp(
  overrides: Record<string, string> = {},
  opts: { aws?: AwsClients; now?: () => Date } = {},
): Promise<TestApp> {
  const config = testConfig(overrides);
  const aws = opts.aws ?? createAwsClients(config);
  const rawLogs: string[] = [];
  const logs: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) {
        rawLogs.push(line);
        logs.push(JSON.parse(line) as Record<string, unknown>);
      }
      cb();
    },
  });
  const app = await buildApp(config, {
    aws,
    fastify: { logger: { level: config.LOG_LEVEL, stream, redact: ['req.headers.authorization', 'req.headers.cookie'] } },
    ...(opts.now ? { now: opts.now } : {}),
  });
  if (!opts.aws) app.addHook('onClose', async () => aws.destroy());
  return { app, aws, config, logs, rawLogs };
}

/**
 * Makes the next `times` DynamoDB transactions sent through `aws` fail with `fault()` before they
 * reach the emulator: for faults the emulator cannot produce (throttling, transaction conflicts).
 */
export function failNextTransactions(aws: AwsClients, fault: () => Error, times = 1): void {
  let left = times;
  aws.dynamo.middlewareStack.add(
    (next) => async (args) => {
      if (left > 0 && typeof args.input === 'object' && args.input !== null && 'TransactItems' in args.input) {
        left -= 1;
        throw fault();
      }
      return next(args);
    },
    { step: 'initialize', name: `injectedTransactionFault-${randomUUID()}` },
  );
}

export function refreshCookie(res: LightMyRequestResponse): string | undefined {
  const c = res.cookies.find((x) => x.name === 'scs_refresh');
  return c?.value;
}

export async function register(app: FastifyInstance, username: string, password = PASSWORD) {
  return app.inject({ method: 'POST', url: '/auth/register', payload: { username, password } });
}

export async function login(app: FastifyInstance, username: string, password = PASSWORD, headers: Record<string, string> = {}) {
  return app.inject({ method: 'POST', url: '/auth/login', payload: { username, password }, headers });
}

/** Registers and logs in a fresh user. */
export async function signedIn(app: FastifyInstance) {
  const username = uniqueName();
  const reg = await register(app, username);
  if (reg.statusCode !== 201) throw new Error(`register failed: ${reg.body}`);
  const res = await login(app, username);
  if (res.statusCode !== 200) throw new Error(`login failed: ${res.body}`);
  const body = res.json<{ accessToken: string; user: { id: string } }>();
  return { username, userId: body.user.id, accessToken: body.accessToken, refresh: refreshCookie(res) ?? '' };
}
