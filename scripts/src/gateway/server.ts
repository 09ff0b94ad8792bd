import { loadConfig } from '@scs/common';
import closeWithGrace from 'close-with-grace';
import { buildGateway, GatewayConfig } from './app';

async function main(): Promise<void> {
  const config = loadConfig(GatewayConfig, process.env);
  const app = await buildGateway(config);
  app.get('/gateway/health', async () => ({ status: 'ok' }));
  closeWithGrace({ delay: 10_000 }, async () => app.close());
  await app.listen({ host: config.HOST, port: config.GATEWAY_PORT });
}

main().catch((err: unknown) => {
  process.stderr.write(`gateway failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
