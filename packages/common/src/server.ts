import closeWithGrace from 'close-with-grace';
import type { FastifyInstance } from 'fastify';
import { createRequire } from 'node:module';

/** Pretty logs only for a person at a terminal, and only where pino-pretty is installed. */
export function wantsPrettyLogs(stdout: NodeJS.WriteStream): boolean {
  if (!stdout.isTTY) return false;
  try {
    createRequire(__filename).resolve('pino-pretty');
    return true;
  } catch {
    return false;
  }
}

/**
 * Listens and installs graceful shutdown: on SIGTERM/SIGINT new requests get 503 (return503OnClosing),
 * in-flight ones get `graceMs` to finish, then resources close through `onClose` hooks.
 */
export async function listenWithGrace(
  app: FastifyInstance,
  opts: { host: string; port: number; graceMs: number },
): Promise<void> {
  closeWithGrace({ delay: opts.graceMs }, async ({ signal, err }) => {
    if (err) app.log.error({ err }, 'shutting down after an unexpected error');
    else app.log.info({ signal }, 'shutting down');
    await app.close();
  });
  await app.listen({ host: opts.host, port: opts.port });
}
