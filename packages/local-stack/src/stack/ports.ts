import { createServer } from 'node:net';

export interface PortClaim {
  /** What will listen there, for the message. */
  what: string;
  /** The variable that moves it. */
  knob: string;
  port: number;
  host: string;
}

/** True when nothing listens on host:port (checked by binding it for a moment). */
export function isPortFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => (err.code === 'EADDRINUSE' ? resolve(false) : reject(err)));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * Refuses to start when two settings name the same port or a port is taken, with a message that
 * says which setting moves it: better than a child failing later with EADDRINUSE in its log.
 */
export async function assertPortsFree(claims: PortClaim[]): Promise<void> {
  const seen = new Map<number, PortClaim>();
  for (const claim of claims) {
    const other = seen.get(claim.port);
    if (other) throw new Error(`${claim.knob} and ${other.knob} are both ${claim.port}: give each its own port`);
    seen.set(claim.port, claim);
  }
  for (const claim of claims) {
    if (!(await isPortFree(claim.port, claim.host))) {
      throw new Error(
        `Port ${claim.port} (${claim.what}) is already in use on ${claim.host}: is another "npm start" running? ` +
          `Stop it, or choose another port with ${claim.knob}=<port>.`,
      );
    }
  }
}
