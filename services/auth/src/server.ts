import { createAwsClients, listenWithGrace, loadConfig, wantsPrettyLogs } from '@scs/common';
import { buildApp } from './app';
import { AuthConfig } from './config';

/** The only place that reads the environment, handles signals and listens. */
async function main(): Promise<void> {
  const config = loadConfig(AuthConfig, process.env);
  const aws = createAwsClients(config);
  const app = await buildApp(config, { aws, fastify: { logger: undefined } });
  app.addHook('onClose', async () => aws.destroy());

  const adminUsername = process.env.SCS_ADMIN_USERNAME;
  const adminPassword = process.env.SCS_ADMIN_PASSWORD;
  if (adminUsername && adminPassword) {
    const { user, created } = await app.authService.seedAdmin(adminUsername, adminPassword);
    app.log.info({ audit: { event: 'admin_seed', outcome: 'success', userId: user.id, created } }, 'audit admin_seed success');
  } else if (adminUsername || adminPassword) {
    app.log.warn('SCS_ADMIN_USERNAME and SCS_ADMIN_PASSWORD must both be set to seed the admin; skipped');
  }

  await listenWithGrace(app, { host: config.HOST, port: config.PORT, graceMs: config.SHUTDOWN_GRACE_MS });
}

main().catch((err: unknown) => {
  process.stderr.write(`auth failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
