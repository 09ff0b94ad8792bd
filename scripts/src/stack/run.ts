import { createAwsClients, loadConfig, portProperty } from '@scs/common';
import { Type } from '@sinclair/typebox';
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { startEmulator } from '../emulator';
import { provision, ResourceNames } from '../provision';

const StackConfig = Type.Object({
  GATEWAY_PORT: portProperty(8080),
  EMULATOR_PORT: portProperty(4566),
  AUTH_PORT: portProperty(3001),
  UPLOAD_PORT: portProperty(3002),
  BACKUP_PORT: portProperty(3003),
  LOG_LEVEL: Type.String({ default: 'info' }),
});

const repoRoot = resolve(__dirname, '../../..');

function portFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const srv = createServer();
    srv.once('error', () => done(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => done(true)));
  });
}

/** Prefixes every line a child writes with its name. */
function pipeWithPrefix(name: string, child: ChildProcess): void {
  const prefix = `${name.padEnd(11)}| `;
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    createInterface({ input: stream }).on('line', (line) => process.stdout.write(`${prefix}${line}\n`));
  }
}

async function waitForHealth(name: string, url: string, child: ChildProcess, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${name} exited during start-up (code ${child.exitCode})`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      await res.arrayBuffer();
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`${name} did not become healthy at ${url}`);
}

const children: { name: string; child: ChildProcess }[] = [];
let stopping = false;
const stopAll = async (code: number) => {
  if (stopping) return;
  stopping = true;
  process.stdout.write('Stopping...\n');
  const alive = children.filter(({ child }) => child.exitCode === null && child.signalCode === null);
  await Promise.all(
    alive.reverse().map(
      ({ child }) =>
        new Promise<void>((done) => {
          const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
          child.once('exit', () => {
            clearTimeout(kill);
            done();
          });
          child.kill('SIGTERM');
        }),
    ),
  );
  process.exit(code);
};
process.on('SIGINT', () => void stopAll(0));
process.on('SIGTERM', () => void stopAll(0));
// Last resort if this runner dies some other way: no child outlives it.
process.on('exit', () => {
  for (const { child } of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

/**
 * The local stack: the AWS emulator, provisioning, the three services and the gateway. Every
 * child is stopped on Ctrl-C/SIGTERM, and everything stops if any child dies.
 */
async function main(): Promise<void> {
  const config = loadConfig(StackConfig, process.env);
  const ports = [config.EMULATOR_PORT, config.AUTH_PORT, config.UPLOAD_PORT, config.BACKUP_PORT, config.GATEWAY_PORT];
  for (const port of ports) {
    if (!(await portFree(port))) {
      throw new Error(`Port ${port} is already in use: is another stack running? (stop it, or set the *_PORT variables)`);
    }
  }


  const emulator = await startEmulator(repoRoot, config.EMULATOR_PORT);
  children.push({ name: 'emulator', child: emulator.child });
  emulator.child.on('exit', () => {
    if (!stopping) {
      process.stderr.write('The AWS emulator exited unexpectedly\n');
      void stopAll(1);
    }
  });

  const awsEnv = {
    AWS_ENDPOINT_URL: emulator.endpoint,
    AWS_REGION: process.env.AWS_REGION ?? 'us-east-1',
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
  };
  // The emulator accepts any credentials; these dummy ones keep the SDK's default chain happy.
  Object.assign(process.env, awsEnv);
  const aws = createAwsClients({ AWS_REGION: awsEnv.AWS_REGION, AWS_ENDPOINT_URL: emulator.endpoint, AWS_MAX_ATTEMPTS: 3, AWS_REQUEST_TIMEOUT_MS: 10_000 });
  try {
    await provision(aws, loadConfig(ResourceNames, process.env), { info: (m) => process.stdout.write(`provision  | ${m}\n`) });
  } finally {
    aws.destroy();
  }

  const base = {
    ...process.env,
    ...awsEnv,
    COOKIE_SECURE: 'false',
    // Development machines run Node 20; the images run Node 22, where this warning does not apply.
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ?? 'true',
    TRUSTED_PROXIES: '127.0.0.1/32,::1/128',
    LOG_LEVEL: config.LOG_LEVEL,
  };
  const services = [
    { name: 'auth', script: 'services/auth/dist/server.js', port: config.AUTH_PORT },
    { name: 'upload', script: 'services/upload/dist/server.js', port: config.UPLOAD_PORT },
    { name: 'backup-sync', script: 'services/backup-sync/dist/server.js', port: config.BACKUP_PORT },
    { name: 'gateway', script: 'scripts/dist/gateway/server.js', port: config.GATEWAY_PORT },
  ];
  for (const svc of services) {
    const env = {
      ...base,
      PORT: String(svc.port),
      HOST: '127.0.0.1',
      GATEWAY_PORT: String(config.GATEWAY_PORT),
      AUTH_URL: `http://127.0.0.1:${config.AUTH_PORT}`,
      UPLOAD_URL: `http://127.0.0.1:${config.UPLOAD_PORT}`,
      BACKUP_URL: `http://127.0.0.1:${config.BACKUP_PORT}`,
    };
    // Each child in its own process group: it hears signals from this runner only, once, so its
    // graceful shutdown is not cut short by a second signal from the terminal.
    const child = spawn(process.execPath, [join(repoRoot, svc.script)], {
      cwd: repoRoot,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    children.push({ name: svc.name, child });
    pipeWithPrefix(svc.name, child);
    child.on('exit', (code, signal) => {
      if (!stopping) {
        process.stderr.write(`${svc.name} exited unexpectedly (code ${code}, signal ${signal}): stopping the stack\n`);
        void stopAll(1);
      }
    });
  }
  await Promise.all(services.map((svc, i) => waitForHealth(svc.name, `http://127.0.0.1:${svc.port}/health`, children[i + 1]!.child)));
  process.stdout.write(`\nSecure Cloud Storage is running at http://localhost:${config.GATEWAY_PORT}\n(Ctrl-C stops it)\n\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`npm start failed: ${err instanceof Error ? err.message : String(err)}\n`);
  void stopAll(1);
});
