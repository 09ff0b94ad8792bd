import { createAwsClients, loadConfig } from '@scs/common';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { emulatorArgs, motoPython, waitForEmulator } from '../emulator';
import { provision, ResourceNames } from '../provision';
import { describeExit, type ExitInfo, ManagedChild } from './child';
import { STACK_HELP, StackConfig } from './config';
import { waitForHealthy } from './health';
import { StackOutput } from './output';
import { assertPortsFree } from './ports';

const REPO_ROOT = resolve(__dirname, '../../../..');

/** The emulator accepts any credentials; these are the conventional ones (the product contract). */
export const LOCAL_AWS = { AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' } as const;

/**
 * Ctrl-C and `kill -- -pgid` signal every process of the group at once, so a child may exit a
 * moment before the runner sees its own signal: wait this long before calling an exit unexpected.
 */
const SIGNAL_SETTLE_MS = 300;

interface NodeService {
  name: string;
  /** Built entry point, relative to the repository root. */
  script: string;
  /** Node options before the script. */
  nodeArgs?: readonly string[];
  port: number;
  env?: Record<string, string>;
}

/**
 * Node options the upload service runs with, here, in the benchmark and in its container image
 * (as NODE_OPTIONS: "nodeOptions" in docker/images.json, which a test keeps equal to this).
 * A young generation of 1 MiB semi-spaces has V8 collect often enough that the 64 KiB buffers of
 * the request's socket reads (one per read, freed only when their Buffer objects are collected)
 * do not pile up: with V8's default (16 MiB) tens of MiB of them wait for a collection.
 */
export const UPLOAD_NODE_ARGS: readonly string[] = ['--max-semi-space-size=1'];

/** Where a client on this machine reaches a server listening on `host`. */
function reachable(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

/** Ways a program that runs the stack itself (the resilience suite) changes it; `npm start` uses none. */
export interface StackOptions {
  /**
   * Where a child reaches the AWS emulator, by child name (`auth`, `upload`, ...): e.g. a fault
   * proxy in front of it. The emulator's own address when undefined. Provisioning always talks
   * to the emulator directly.
   */
  awsEndpointFor?: (child: string, emulatorEndpoint: string) => string | undefined;
}

/** How a child was started, so that it can be started again the same way. */
interface ChildLaunch {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  /** Its `/health`, for children that listen. */
  health?: string;
}

/**
 * The local stack: the AWS emulator, provisioning, auth, upload, backup-sync, the sensitive
 * mover's runner and the gateway. `start` brings them up in that order and waits for each
 * service's `/health`; `stop` (idempotent)
 * stops the gateway and services, then the emulator, SIGTERM first and SIGKILL after the grace
 * period. Any child dying on its own stops everything with exit code 1, except one stopped on
 * purpose with `stopChild` (which `restartChild` starts again).
 */
export class Stack {
  private readonly children: ManagedChild[] = [];
  private readonly launches = new Map<string, ChildLaunch>();
  private readonly stoppedOnPurpose = new Set<ManagedChild>();
  private readonly aborter = new AbortController();
  private stopping: Promise<number> | undefined;
  private resolveStopped!: (code: number) => void;
  /** Settles with the exit code once every child is gone. */
  readonly stopped = new Promise<number>((resolve) => (this.resolveStopped = resolve));

  constructor(
    private readonly config: StackConfig,
    /** The environment passed to every child (plus the stack's own settings). */
    private readonly env: NodeJS.ProcessEnv,
    private readonly out: StackOutput,
    private readonly options: StackOptions = {},
  ) {}

  get stopRequested(): boolean {
    return this.aborter.signal.aborted;
  }

  async start(): Promise<void> {
    const c = this.config;
    const host = c.STACK_HOST;
    await assertPortsFree([
      { what: 'AWS emulator', knob: 'EMULATOR_PORT', port: c.EMULATOR_PORT, host: '127.0.0.1' },
      { what: 'auth service', knob: 'AUTH_PORT', port: c.AUTH_PORT, host },
      { what: 'upload service', knob: 'UPLOAD_PORT', port: c.UPLOAD_PORT, host },
      { what: 'backup-sync service', knob: 'BACKUP_PORT', port: c.BACKUP_PORT, host },
      { what: 'gateway', knob: 'GATEWAY_PORT', port: c.GATEWAY_PORT, host },
    ]);

    const endpoint = `http://127.0.0.1:${c.EMULATOR_PORT}`;
    const emulator = this.spawn(
      'emulator',
      motoPython(REPO_ROOT),
      emulatorArgs(REPO_ROOT, c.EMULATOR_PORT),
      { ...this.env, PYTHONUNBUFFERED: '1' },
    );
    await waitForEmulator(endpoint, { child: emulator.process, timeoutMs: c.STACK_START_TIMEOUT_MS });
    this.out.info(`AWS emulator ready at ${endpoint}`);

    this.checkpoint();
    const aws = createAwsClients({ AWS_REGION: LOCAL_AWS.AWS_REGION, AWS_ENDPOINT_URL: endpoint, AWS_MAX_ATTEMPTS: 3, AWS_REQUEST_TIMEOUT_MS: 10_000 });
    try {
      // The primary bucket admits direct uploads from the gateway's origins only (CORS), as on AWS from the site's.
      const siteOrigins = `http://localhost:${c.GATEWAY_PORT},http://${reachable(host)}:${c.GATEWAY_PORT}`;
      await provision(aws, loadConfig(ResourceNames, { SITE_ORIGINS: siteOrigins, ...this.env }), { info: (msg) => this.out.sink('provision', msg, 'stdout') });
    } finally {
      aws.destroy();
    }

    const shared: NodeJS.ProcessEnv = {
      ...this.env,
      ...LOCAL_AWS,
      AWS_ENDPOINT_URL: endpoint,
      COOKIE_SECURE: 'false',
      TRUSTED_PROXIES: '127.0.0.1/32,::1/128',
      LOG_LEVEL: c.LOG_LEVEL,
      HOST: host,
      // Give in-flight requests a chance to finish before the runner's SIGKILL.
      SHUTDOWN_GRACE_MS: this.env.SHUTDOWN_GRACE_MS ?? String(Math.max(0, c.STACK_STOP_GRACE_MS - 2_000)),
      // The single-process emulator can take more than AWS's 3 s to accept a connection while a
      // flood of uploads holds it busy (R4's rate flood: 503s from connections not opened in time).
      AWS_CONNECT_TIMEOUT_MS: this.env.AWS_CONNECT_TIMEOUT_MS ?? '15000',
    };
    // Once per process, about SDK releases of 2027 on Node 20: noise in the stack's output.
    shared.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    delete shared.AWS_SESSION_TOKEN;
    delete shared.AWS_PROFILE;

    const services: NodeService[] = [
      { name: 'auth', script: 'services/auth/dist/server.js', port: c.AUTH_PORT },
      { name: 'upload', script: 'services/upload/dist/server.js', nodeArgs: UPLOAD_NODE_ARGS, port: c.UPLOAD_PORT },
      { name: 'backup-sync', script: 'services/backup-sync/dist/server.js', port: c.BACKUP_PORT },
    ];
    await Promise.all(services.map((svc) => this.startNode(svc, shared)));
    this.startWorker({ name: 'mover', script: 'services/sensitive-mover/dist/runner.js' }, shared);

    const url = (port: number) => `http://${reachable(host)}:${port}`;
    await this.startNode(
      {
        name: 'gateway',
        script: 'packages/local-stack/dist/gateway/server.js',
        port: c.GATEWAY_PORT,
        env: { GATEWAY_PORT: String(c.GATEWAY_PORT), AUTH_URL: url(c.AUTH_PORT), UPLOAD_URL: url(c.UPLOAD_PORT), BACKUP_URL: url(c.BACKUP_PORT) },
      },
      shared,
    );
  }

  /**
   * A process without a port (the sensitive mover's local runner): started, not health-checked;
   * like every child, its dying on its own stops the stack.
   */
  private startWorker(worker: { name: string; script: string }, shared: NodeJS.ProcessEnv): void {
    const script = join(REPO_ROOT, worker.script);
    if (!existsSync(script)) throw new Error(`${worker.script} is missing: the build of ${worker.name} did not produce it`);
    this.spawn(worker.name, process.execPath, [script], shared);
    this.out.info(`${worker.name} started (the sensitive mover's local runner: polls the primary bucket's object events)`);
  }

  /** Stops every child (idempotent); resolves with the exit code. */
  stop(reason?: string, exitCode = 0): Promise<number> {
    if (this.stopping) return this.stopping;
    this.aborter.abort();
    if (reason) this.out.info(reason);
    this.stopping = (async () => {
      const grace = this.config.STACK_STOP_GRACE_MS;
      const emulator = this.children.filter((child) => child.name === 'emulator');
      const rest = this.children.filter((child) => child.name !== 'emulator');
      // The emulator last, so services can finish what they are doing with it.
      await Promise.all(rest.map((child) => child.stop(grace)));
      await Promise.all(emulator.map((child) => child.stop(grace)));
      this.out.info(exitCode === 0 ? 'stopped' : 'stopped after a failure');
      this.resolveStopped(exitCode);
      return exitCode;
    })();
    return this.stopping;
  }

  /** Last resort when the runner exits without stopping (an uncaught error): kill what is left. */
  killAll(): void {
    for (const child of this.children) child.kill();
  }

  /** The running child of that name (the last one started), if any. */
  child(name: string): ManagedChild | undefined {
    return this.children.findLast((child) => child.name === name);
  }

  /** Names of the children started so far, in start order. */
  get childNames(): string[] {
    return [...this.launches.keys()];
  }

  /**
   * Stops one child on purpose while the rest keeps running: `signal` (SIGTERM unless told), then
   * SIGKILL after STACK_STOP_GRACE_MS. Resolves with how it exited.
   */
  async stopChild(name: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<ExitInfo> {
    const child = this.child(name);
    if (!child) throw new Error(`no child named ${name}`);
    this.stoppedOnPurpose.add(child);
    return child.stop(this.config.STACK_STOP_GRACE_MS, signal);
  }

  /** Starts a child stopped with `stopChild` again, the same way as before; waits for its `/health`. */
  async restartChild(name: string): Promise<ManagedChild> {
    const launch = this.launches.get(name);
    const previous = this.child(name);
    if (!launch) throw new Error(`no child named ${name}`);
    if (previous?.running) throw new Error(`${name} is still running`);
    const child = this.spawn(name, launch.command, launch.args, launch.env, launch.health);
    if (launch.health) await waitForHealthy(launch.health, child, { timeoutMs: this.config.STACK_START_TIMEOUT_MS, signal: this.aborter.signal });
    this.out.info(`${name} restarted`);
    return child;
  }

  private async startNode(svc: NodeService, shared: NodeJS.ProcessEnv): Promise<void> {
    const script = join(REPO_ROOT, svc.script);
    if (!existsSync(script)) throw new Error(`${svc.script} is missing: the build of ${svc.name} did not produce it`);
    const health = `http://${reachable(this.config.STACK_HOST)}:${svc.port}/health`;
    const child = this.spawn(svc.name, process.execPath, [...(svc.nodeArgs ?? []), script], { ...shared, PORT: String(svc.port), ...svc.env }, health);
    await waitForHealthy(health, child, { timeoutMs: this.config.STACK_START_TIMEOUT_MS, signal: this.aborter.signal });
    this.out.info(`${svc.name} ready on port ${svc.port}`);
  }

  private spawn(name: string, command: string, args: string[], baseEnv: NodeJS.ProcessEnv, health?: string): ManagedChild {
    this.checkpoint();
    const env = this.withAwsEndpoint(name, baseEnv);
    this.launches.set(name, { command, args, env: baseEnv, ...(health ? { health } : {}) });
    const child = new ManagedChild({ name, command, args, env, cwd: REPO_ROOT }, this.out.sink);
    this.children.push(child);
    void child.exited.then(async (exit) => {
      if (this.stopRequested || this.stoppedOnPurpose.has(child)) return;
      await sleep(SIGNAL_SETTLE_MS);
      if (this.stopRequested) return;
      void this.stop(`${name} exited unexpectedly (${describeExit(exit)}): stopping every process`, 1);
    });
    return child;
  }

  /** A child's environment with its AWS endpoint as `options.awsEndpointFor` says. */
  private withAwsEndpoint(name: string, env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
    const emulator = env.AWS_ENDPOINT_URL;
    const endpoint = emulator ? this.options.awsEndpointFor?.(name, emulator) : undefined;
    return endpoint ? { ...env, AWS_ENDPOINT_URL: endpoint } : env;
  }

  /** Nothing new starts once stopping has begun. */
  private checkpoint(): void {
    if (this.stopRequested) throw new Error('stopping');
  }
}

/**
 * `npm start` (through scripts/bin/start.mjs, which installs and builds first). Resolves with the
 * process exit code once everything has stopped.
 */
export async function runStack(argv: string[] = [], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(STACK_HELP);
    return 0;
  }
  if (argv.length > 0) {
    process.stderr.write(`npm start takes no arguments (got ${argv.join(' ')}); see "npm start -- --help"\n`);
    return 2;
  }
  let config: StackConfig;
  try {
    config = loadConfig(StackConfig, env);
    loadConfig(ResourceNames, env);
  } catch (err) {
    process.stderr.write(`npm start: ${(err as Error).message}\n`);
    return 1;
  }

  // The runner's own AWS calls (provisioning) use the SDK's default chain: point it at the emulator's credentials.
  Object.assign(process.env, LOCAL_AWS);
  delete process.env.AWS_SESSION_TOKEN;
  delete process.env.AWS_PROFILE;

  const out = new StackOutput({
    pretty: Boolean(process.stdout.isTTY),
    emulatorRequests: config.LOG_LEVEL === 'debug' || config.LOG_LEVEL === 'trace',
  });
  const stack = new Stack(config, env, out);
  const onSignal = (signal: NodeJS.Signals) => void stack.stop(`received ${signal}: stopping every process`);
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const signal of signals) process.on(signal, onSignal);
  const onExit = () => stack.killAll();
  process.on('exit', onExit);

  try {
    await stack.start();
    out.banner([
      `Secure Cloud Storage is running at http://localhost:${config.GATEWAY_PORT}`,
      `  (auth :${config.AUTH_PORT}, upload :${config.UPLOAD_PORT}, backup-sync :${config.BACKUP_PORT}, ` +
        `sensitive-mover runner, AWS emulator :${config.EMULATOR_PORT}; Ctrl-C stops everything)`,
    ]);
  } catch (err) {
    if (!stack.stopRequested) await sleep(SIGNAL_SETTLE_MS);
    if (!stack.stopRequested) void stack.stop(`start-up failed: ${err instanceof Error ? err.message : String(err)}`, 1);
  }

  const code = await stack.stopped;
  for (const signal of signals) process.off(signal, onSignal);
  process.off('exit', onExit);
  return code;
}

if (require.main === module) {
  void runStack(process.argv.slice(2)).then((code) => process.exit(code));
}
