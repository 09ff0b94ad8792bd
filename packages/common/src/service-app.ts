import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { type Static, type TObject, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { type AwsClients, createAwsClients } from './aws';
import { type BaseConfig, baseConfigProperties, loadConfig, portProperty } from './config';
import { serverOptions } from './http';
import { PublicKeyStore } from './keys';
import { auditPlugin } from './plugins/audit';
import { authenticatePlugin, type RoleLookup } from './plugins/authenticate';
import { connectionsPlugin } from './plugins/connections';
import { errorHandlerPlugin } from './plugins/error-handler';
import { inputPlugin } from './plugins/input';
import { observabilityPlugin } from './plugins/observability';
import { securityHeadersPlugin, type SecurityHeadersOptions } from './plugins/security-headers';
import { listenWithGrace, wantsPrettyLogs } from './server';

export type ServiceApp = FastifyInstance & ReturnType<FastifyInstance['withTypeProvider']>;

declare module 'fastify' {
  interface FastifyInstance {
    /** The public keys access tokens are verified with (kept fresh from SSM); the auth service serves them as its JWKS. */
    publicKeys: PublicKeyStore;
  }
}

export interface ServiceAppOptions {
  service: string;
  aws: AwsClients;
  /** Throws when a dependency does not answer (`/ready`). */
  readiness: () => Promise<void>;
  /** Where the OpenAPI UI is served (the JSON document is at `${prefix}/json`). */
  docs: { prefix: string; title: string };
  securityHeaders?: SecurityHeadersOptions;
  fastify?: Partial<FastifyServerOptions>;
  /** Clock for tests (fake time); defaults to the system clock. */
  now?: () => number;
  /** Registers public plugins (e.g. the browser UI's static files) before token verification. */
  publicRoutes?: (app: FastifyInstance) => Promise<void>;
  /** The account's current role, for routes with `config.roles` (required when there are any). */
  currentRole?: RoleLookup;
  /**
   * Every authenticated route refuses a token whose account no longer exists (401), through
   * `currentRole`, each account's answer remembered for `cacheMs`.
   */
  accountCheck?: { cacheMs: number };
}

/**
 * Every service's foundation, in visible order: connection hygiene (bodies left unread by an early
 * answer never stall a reused connection), one error handler, input that no store accepts refused,
 * security headers, health / readiness / metrics, OpenAPI docs, access-token verification with the
 * auth service's public keys (every route registered afterwards is authenticated unless it says
 * `public: true`), and the audit log. The service then registers its own plugins and routes. The
 * key store is `app.publicKeys`.
 */
export async function createServiceApp(config: BaseConfig, opts: ServiceAppOptions): Promise<FastifyInstance> {
  const app = Fastify({ ...serverOptions(config), ...opts.fastify }).withTypeProvider<TypeBoxTypeProvider>();
  const keys = new PublicKeyStore(opts.aws.ssm, config.JWT_PUBLIC_KEYS_PARAM, config.KEY_REFRESH_SECONDS * 1000, app.log, opts.now);
  await keys.load();
  keys.start();
  app.addHook('onClose', async () => keys.stop());
  app.decorate('publicKeys', keys);

  await app.register(connectionsPlugin);
  await app.register(errorHandlerPlugin);
  await app.register(inputPlugin);
  await app.register(securityHeadersPlugin, opts.securityHeaders ?? {});
  await app.register(observabilityPlugin, { service: opts.service, readiness: opts.readiness });
  await app.register(swagger, {
    openapi: {
      info: { title: opts.docs.title, version: '1.0.0' },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    },
  });
  // Registered before token verification, so the docs (and publicRoutes) stay public.
  await app.register(swaggerUi, { routePrefix: opts.docs.prefix, staticCSP: true });
  await opts.publicRoutes?.(app);
  await app.register(authenticatePlugin, {
    keys,
    issuer: config.JWT_ISSUER,
    audience: config.JWT_AUDIENCE,
    ...(opts.currentRole ? { currentRole: opts.currentRole } : {}),
    ...(opts.accountCheck ? { accountCheck: { cacheMs: opts.accountCheck.cacheMs, ...(opts.now ? { now: opts.now } : {}) } } : {}),
  });
  await app.register(auditPlugin);
  return app;
}

/** What `runService` itself reads of a service's settings: the shared ones (AWS included) and the port. */
const ServiceSettings = Type.Object({ ...baseConfigProperties, PORT: portProperty(1) });

/**
 * A service's `server.ts` in one call: the only place that reads the environment, handles signals
 * and listens. A bad configuration value fails start-up with a message naming the variable.
 * `schema` is the service's configuration: the shared settings (`baseConfigProperties`) and
 * `PORT` among them.
 */
export function runService<T extends TObject>(
  name: string,
  schema: T,
  build: (config: Static<T>, deps: { aws: AwsClients; fastify: Partial<FastifyServerOptions> }) => Promise<FastifyInstance>,
  afterBuild?: (app: FastifyInstance) => Promise<void>,
): void {
  const main = async () => {
    const config = loadConfig(schema, process.env);
    if (!Value.Check(ServiceSettings, config)) throw new Error(`the configuration schema of ${name} lacks the shared settings or PORT`);
    const aws = createAwsClients(config);
    const fastify: Partial<FastifyServerOptions> = {
      logger: serverOptions(config, { prettyLogs: wantsPrettyLogs(process.stdout) }).logger,
    };
    const app = await build(config, { aws, fastify });
    app.addHook('onClose', async () => aws.destroy());
    await afterBuild?.(app);
    await listenWithGrace(app, { host: config.HOST, port: config.PORT, graceMs: config.SHUTDOWN_GRACE_MS });
  };
  main().catch((err: unknown) => {
    process.stderr.write(`${name} failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
