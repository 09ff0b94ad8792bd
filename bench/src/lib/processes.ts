import { type ChildProcess, spawn } from 'node:child_process';

/** Something the bench started and must stop, whatever happens. */
export interface Stoppable {
  name: string;
  /** The process to SIGKILL if the bench itself exits before `stop` finished. */
  child?: ChildProcess;
  stop(): Promise<void>;
}

/** A service the bench runs as its own process (Node, or Python for a baseline), listening on 127.0.0.1. */
export interface NodeService extends Stoppable {
  child: ChildProcess;
  pid: number;
  url: string;
  /** The last lines it wrote (stdout and stderr), for error messages. */
  output(): string;
  /** Throws when the process has exited (it should run until stopped). */
  assertRunning(): void;
}

export interface StartNodeOptions {
  name: string;
  script: string;
  /** Node options before the script (e.g. `--cpu-prof`). */
  nodeArgs?: string[];
  cwd: string;
  port: number;
  env: Record<string, string>;
  /** Answers 200 once the service is ready. */
  readyPath: string;
  timeoutMs?: number;
}

const alive = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

/** Sends SIGTERM, then SIGKILL after `graceMs`; resolves once the process exited. */
export function stopChild(child: ChildProcess, graceMs = 5_000): Promise<void> {
  return new Promise((resolve) => {
    if (!alive(child)) return resolve();
    const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/**
 * Every process a benchmark starts is registered here, so the entry point can stop them all in
 * reverse order on success, failure or a signal, and SIGKILL what is left if it exits abruptly.
 */
export class ProcessRegistry {
  private readonly items: Stoppable[] = [];
  private closing = false;

  add<T extends Stoppable>(item: T): T {
    this.items.push(item);
    return item;
  }

  /** Starts `node [nodeArgs] script` with exactly `env` (plus PATH), and waits until `readyPath` answers 200. */
  startNode(opts: StartNodeOptions): Promise<NodeService> {
    return this.startProcess({ ...opts, command: process.execPath, args: [...(opts.nodeArgs ?? []), opts.script] });
  }

  /** Starts `command args` with exactly `env` (plus PATH), and waits until `readyPath` answers 200. */
  async startProcess(opts: Omit<StartNodeOptions, 'script' | 'nodeArgs'> & { command: string; args: string[] }): Promise<NodeService> {
    const child = spawn(opts.command, opts.args, {
      cwd: opts.cwd,
      env: { PATH: process.env.PATH ?? '', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let tail = '';
    const keep = (d: Buffer) => {
      tail = (tail + d.toString()).slice(-8_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    let stopping = false;
    const url = `http://127.0.0.1:${opts.port}`;
    const service: NodeService = {
      name: opts.name,
      child,
      pid: child.pid ?? -1,
      url,
      output: () => tail.trim(),
      assertRunning: () => {
        if (!alive(child)) {
          throw new Error(`${opts.name} exited unexpectedly (code ${child.exitCode}, signal ${child.signalCode})\n${tail.trim()}`);
        }
      },
      stop: async () => {
        stopping = true;
        await stopChild(child);
      },
    };
    this.add(service);
    if (child.pid === undefined) throw new Error(`${opts.name} could not be started`);
    child.once('exit', (code, signal) => {
      if (!stopping && !this.closing) process.stderr.write(`${opts.name} exited (code ${code}, signal ${signal})\n`);
    });

    const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
    for (;;) {
      service.assertRunning();
      try {
        const res = await fetch(`${url}${opts.readyPath}`, { signal: AbortSignal.timeout(1_000) });
        await res.arrayBuffer();
        if (res.ok) return service;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`${opts.name} was not ready at ${url}${opts.readyPath} in time\n${tail.trim()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Stops everything, newest first; never throws. */
  async stopAll(): Promise<void> {
    this.closing = true;
    while (this.items.length > 0) {
      const item = this.items.pop() as Stoppable;
      try {
        await item.stop();
      } catch (err) {
        process.stderr.write(`stopping ${item.name} failed: ${(err as Error).message}\n`);
      }
    }
  }

  /** Last resort from a synchronous `exit` handler: SIGKILL whatever still runs. */
  killAllNow(): void {
    for (const item of this.items) {
      if (item.child && alive(item.child)) item.child.kill('SIGKILL');
    }
  }
}
