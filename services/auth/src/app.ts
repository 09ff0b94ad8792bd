import cookie from '@fastify/cookie';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { DescribeTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  auditPlugin,
  authenticatePlugin,
  type AwsClients,
  errorHandlerPlugin,
  observabilityPlugin,
  PublicKeyStore,
  securityHeadersPlugin,
  serverOptions,
} from '@scs/common';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { Counter } from 'prom-client';
import type { AuthConfig } from './config';
import { RateLimited } from './errors';
import { SessionRepository } from './repositories/sessions';
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
 * The auth service as a Fastify app that never listens (server.ts does). Plugins in visible
 * order: error handling, security headers, observability, docs, cookies, rate limits, token
 * verification (every later route is authenticated unless it says `public: true`), audit, routes.
 */
export async function buildApp(config: AuthConfig, deps: AuthDeps): Promise<FastifyInstance> {
  const app = Fastify({ ...serverOptions(config), ...deps.fastify }).withTypeProvider<TypeBoxTypeProvider>();
  const { aws } = deps;

  const clock = deps.now ? () => (deps.now as () => Date)().getTime() : Date.now;
  const refreshMs = config.KEY_REFRESH_SECONDS * 1000;
  const publicKeys = new PublicKeyStore(aws.ssm, config.JWT_PUBLIC_KEYS_PARAM, refreshMs, app.log, clock);
  const signingKey = new SigningKeySource(aws.ssm, config.JWT_SIGNING_KEY_PARAM, refreshMs, app.log, clock);
  await Promise.all([publicKeys.load(), signingKey.load()]);
  publicKeys.start();
  signingKey.start();
  app.addHook('onClose', async () => {
    publicKeys.stop();
    signingKey.stop();
  });

  await app.register(errorHandlerPlugin);
  await app.register(securityHeadersPlugin);
  await app.register(observabilityPlugin, {
    service: 'auth',
    readiness: async () => {
      await Promise.all([
        (aws.dynamo as unknown as DynamoDBClient).send(new DescribeTableCommand({ TableName: config.USERS_TABLE })),
        publicKeys.load(),
      ]);
    },
  });
  const loginCounter = new Counter({
    name: 'scs_auth_logins_total',
    help: 'Login attempts by outcome',
    labelNames: ['outcome'] as const,
    registers: [app.metrics],
  });

  await app.register(swagger, {
    openapi: {
      info: { title: 'Secure Cloud Storage: auth', version: '1.0.0' },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/auth/docs', staticCSP: true });

  await app.register(cookie);
  await app.register(rateLimit, {
    global: false,
    errorResponseBuilder: (_request, context) =>
      Object.assign(new RateLimited(), { retryAfterSeconds: Math.ceil(context.ttl / 1000) }),
  });
  await app.register(authenticatePlugin, {
    keys: publicKeys,
    issuer: config.JWT_ISSUER,
    audience: config.JWT_AUDIENCE,
  });
  await app.register(auditPlugin);

  const service = new AuthService({
    users: new UserRepository(aws.dynamo, config.USERS_TABLE),
    sessions: new SessionRepository(aws.dynamo, config.SESSIONS_TABLE),
    throttle: new LoginThrottle(aws.dynamo, config.THROTTLE_TABLE),
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

  await app.register(authRoutes, { prefix: '/auth', service, config, jwks: () => publicKeys.jwks(), loginCounter });
  return app;
}

