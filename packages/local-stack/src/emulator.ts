import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

/** The Python interpreter that can run moto: the system one when it has moto, else the project's .venv. */
export function motoPython(repoRoot: string, python = process.env.PYTHON ?? 'python3'): string {
  const hasMoto = (py: string) => spawnSync(py, ['-c', 'import moto.server'], { stdio: 'ignore' }).status === 0;
  if (hasMoto(python)) return python;
  const venvPython = join(repoRoot, '.venv', 'bin', 'python');
  if (existsSync(venvPython) && hasMoto(venvPython)) return venvPython;
  throw new Error(
    `moto is not installed: run "npm start" or "npm test" once (they install it into .venv/), or "${python} -m pip install 'moto[server]'"`,
  );
}

/** Asks the kernel for a free loopback port. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      srv.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** Resolves once the emulator answers HTTP, or rejects when it exits or the deadline passes. */
export async function waitForEmulator(endpoint: string, opts: { timeoutMs?: number; child?: ChildProcess } = {}): Promise<void> {
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  let exited: string | undefined;
  opts.child?.once('exit', (code, signal) => {
    exited = `the emulator exited (code ${code}, signal ${signal})`;
  });
  for (;;) {
    if (exited) throw new Error(exited);
    try {
      const res = await fetch(`${endpoint}/moto-api/data.json`, { signal: AbortSignal.timeout(1_000) });
      await res.arrayBuffer();
      if (res.ok) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`the emulator at ${endpoint} did not answer in time`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface RunningEmulator {
  endpoint: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * The emulator's arguments after the Python interpreter: moto's server on 127.0.0.1:port, with
 * DynamoDB requests serialised so conditional writes and transactions are atomic as on AWS
 * (packages/local-stack/bin/emulator.py).
 */
export function emulatorArgs(repoRoot: string, port: number): string[] {
  return [join(repoRoot, 'packages', 'local-stack', 'bin', 'emulator.py'), '-H', '127.0.0.1', '-p', String(port)];
}

/** Starts the emulator on 127.0.0.1:port and waits until it answers. */
export async function startEmulator(repoRoot: string, port: number): Promise<RunningEmulator> {
  const python = motoPython(repoRoot);
  const child = spawn(python, emulatorArgs(repoRoot, port), {
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
    env: { ...process.env, PYTHONUNBUFFERED: '1' },
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const endpoint = `http://127.0.0.1:${port}`;
  try {
    await waitForEmulator(endpoint, { child });
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\n${stderr}`);
  }
  return {
    endpoint,
    child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 3_000).unref();
      }),
  };
}
