import cookie from '@fastify/cookie';
import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { type AwsClients, createServiceApp, rateLimitsPlugin, usersTableRoleLookup } from '@scs/common';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import { Counter } from 'prom-client';
import type { AuthConfig } from './config';
import { SessionRepository } from './repositories/sessions';
import { DeviceRepository } from './repositories/devices';
import { LoginThrottle } from './repositories/throttle';
import { UserRepository } from './repositories/users';
import { authRoutes } from './routes/auth';
import { AuthService } from './services/auth-service';
import { PasswordHasher } from './services/passwords';
import { SigningKeySource } from './services/signing-key';

declare module 'fastify' {
  interface FastifyInstance {
    authService: AuthService;
  }
}

export interface AuthDeps {
  aws: AwsClients;
  /** Overrides for tests (e.g. a logger stream); the defaults come from serverOptions. */
  fastify?: Partial<FastifyServerOptions>;
  now?: () => Date;
}

/**
 * The auth service as a Fastify app that never listens (server.ts does): the common service
 * foundation (errors, headers, health/ready/metrics, docs, token verification, audit), then
 * cookies, rate limits and the auth routes.
 */
export async function buildApp(config: AuthConfig, deps: AuthDeps): Promise<FastifyInstance> {
  const { aws } = deps;
  const clock = deps.now ? () => (deps.now as () => Date)().getTime() : Date.now;
  const app = await createServiceApp(config, {
    service: 'auth',
    aws,
    readiness: async () => {
      await aws.dynamo.send(new DescribeTableCommand({ TableName: config.USERS_TABLE }));
    },
    docs: { prefix: '/auth/docs', title: 'Secure Cloud Storage: auth' },
    currentRole: usersTableRoleLookup(aws.dynamo, config.USERS_TABLE),
    now: clock,
    ...(deps.fastify ? { fastify: deps.fastify } : {}),
  });

  const signingKey = new SigningKeySource(aws.ssm, config.JWT_SIGNING_KEY_PARAM, config.KEY_REFRESH_SECONDS * 1000, app.log, clock);
  await signingKey.load();
  signingKey.start();
  app.addHook('onClose', async () => signingKey.stop());

  const loginCounter = new Counter({
    name: 'scs_auth_logins_total',
    help: 'Login attempts by outcome',
    labelNames: ['outcome'] as const,
    registers: [app.metrics],
  });

  await app.register(cookie);
  // Registration and refresh limits per client address, counted in the throttle table so they hold
  // across every auth instance.
  await app.register(rateLimitsPlugin, { shared: { db: aws.dynamo, table: config.THROTTLE_TABLE, service: 'auth', now: clock } });

  const service = new AuthService({
    users: new UserRepository(aws.dynamo, config.USERS_TABLE),
    sessions: new SessionRepository(aws.dynamo, config.SESSIONS_TABLE),
    throttle: new LoginThrottle(aws.dynamo, config.THROTTLE_TABLE),
    devices: new DeviceRepository(aws.dynamo, config.SESSIONS_TABLE),
    hasher: new PasswordHasher(
      { memoryKiB: config.ARGON2_MEMORY_KIB, timeCost: config.ARGON2_TIME_COST },
      config.HASH_CONCURRENCY,
      config.HASH_QUEUE_LIMIT,
    ),
    signingKey,
    jwt: app.jwt,
    config,
    ...(deps.now ? { now: deps.now } : {}),
  });
  app.decorate('authService', service);

  await app.register(authRoutes, { prefix: '/auth', service, config, jwks: () => app.publicKeys.jwks(), loginCounter });
  return app;
}
