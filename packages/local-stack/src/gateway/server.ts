import { listenWithGrace, loadConfig, serverOptions, wantsPrettyLogs } from '@scs/common';
import { buildGateway, GatewayConfig } from './app';

/** `node packages/local-stack/dist/gateway/server.js`: the dev gateway (npm start runs it); reads the environment and listens. */
async function main(): Promise<void> {
  const config = loadConfig(GatewayConfig, process.env);
  const app = await buildGateway(config, {
    logger: serverOptions(config, { prettyLogs: wantsPrettyLogs(process.stdout) }).logger,
  });
  await listenWithGrace(app, { host: config.HOST, port: config.GATEWAY_PORT, graceMs: config.SHUTDOWN_GRACE_MS });
}

main().catch((err: unknown) => {
  process.stderr.write(`gateway failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
