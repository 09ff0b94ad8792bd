import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { freePort } from '@scs/local-stack/emulator';

/** Launching the real `npm start` from tests, on given ports, in its own process group. */
const REPO_ROOT = resolve(__dirname, '../../..');
export const READY_LINE = /Secure Cloud Storage is running at (http:\/\/\S+)/;

export type StackPorts = Record<'EMULATOR_PORT' | 'AUTH_PORT' | 'UPLOAD_PORT' | 'BACKUP_PORT' | 'GATEWAY_PORT', number>;

export interface RunningStack {
  child: ChildProcess;
  /** The URL the stack printed as ready. */
  url: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output: () => string;
}

/** A free loopback port for every part of a stack. */
export async function freeStackPorts(): Promise<StackPorts> {
  return {
    EMULATOR_PORT: await freePort(),
    AUTH_PORT: await freePort(),
    UPLOAD_PORT: await freePort(),
    BACKUP_PORT: await freePort(),
    GATEWAY_PORT: await freePort(),
  };
}

/**
 * The refresh cookie a response sets (`scs_refresh`, Path=/auth), as `name=value`, the way a browser
 * sends it back. A sign-in from a new device also sets `scs_device` on the same path.
 */
export function refreshCookie(res: Response): string | undefined {
  return res.headers
    .getSetCookie()
    .find((c) => c.startsWith('scs_refresh=') && /;\s*path=\/auth/i.test(c))
    ?.split(';', 1)[0];
}

/** `npm start` in its own process group; resolves once it prints the ready line (an event, not a sleep). */
export async function startStack(ports: StackPorts, extraEnv: NodeJS.ProcessEnv = {}, timeoutMs = 240_000): Promise<RunningStack> {
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'warn', ...extraEnv };
  for (const [key, port] of Object.entries(ports)) env[key] = String(port);
  // The tests' own emulator settings must not leak into the stack (it brings its own).
  delete env.AWS_ENDPOINT_URL;
  const child = spawn('npm', ['start'], { cwd: REPO_ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
    child.once('exit', (code, signal) => done({ code, signal })),
  );
  const url = await new Promise<string>((ready, fail) => {
    const timer = setTimeout(() => fail(new Error(`npm start was not ready within ${timeoutMs} ms:\n${output.slice(-4000)}`)), timeoutMs);
    const onData = (data: Buffer) => {
      output = (output + data.toString()).slice(-200_000);
      const m = READY_LINE.exec(output);
      if (m?.[1]) {
        clearTimeout(timer);
        ready(m[1]);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      fail(new Error(`npm start exited (code ${code}, signal ${signal}) before it was ready:\n${output.slice(-4000)}`));
    });
  });
  return { child, url, exited, output: () => output };
}

/** True while any process of the group is alive (the runner's children share it). */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * SIGTERM to the whole process group, as a terminal's Ctrl-C or a supervisor would; measures how
 * long the exit took and whether any process of the group is left.
 */
export async function stopStack(stack: RunningStack, timeoutMs = 20_000): Promise<{ ms: number; groupGone: boolean }> {
  const started = Date.now();
  const pgid = stack.child.pid;
  if (!pgid) return { ms: 0, groupGone: true };
  if (groupAlive(pgid)) process.kill(-pgid, 'SIGTERM');
  const deadline = started + timeoutMs;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([stack.exited, new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
  clearTimeout(timer);
  // npm may exit before the runner has finished stopping its children: what counts is the moment
  // the last process of the group is gone.
  let groupGone = !groupAlive(pgid);
  while (!groupGone && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    groupGone = !groupAlive(pgid);
  }
  const ms = Date.now() - started;
  return { ms, groupGone };
}
