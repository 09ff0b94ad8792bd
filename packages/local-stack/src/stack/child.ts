import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export type LineSink = (name: string, line: string, stream: 'stdout' | 'stderr') => void;

export interface ChildSpec {
  name: string;
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the process could not be started at all. */
  error?: Error;
}

export const describeExit = (exit: ExitInfo): string =>
  exit.error ? `could not start: ${exit.error.message}` : exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`;

/**
 * One process of the stack: its output goes line by line to the sink (which prefixes the name),
 * `exited` settles once, and `stop` asks politely (SIGTERM) before it insists (SIGKILL).
 */
export class ManagedChild {
  readonly name: string;
  readonly exited: Promise<ExitInfo>;
  private readonly child: ChildProcess;
  private exit: ExitInfo | undefined;

  constructor(spec: ChildSpec, sink: LineSink) {
    this.name = spec.name;
    // Same process group as the runner: a signal to the group (Ctrl-C, `kill -- -pgid`) reaches
    // every process, so nothing survives even if the runner itself is killed.
    this.child = spawn(spec.command, spec.args, { cwd: spec.cwd, env: spec.env, stdio: ['ignore', 'pipe', 'pipe'] });
    for (const stream of ['stdout', 'stderr'] as const) {
      const input = this.child[stream];
      if (input) createInterface({ input, crlfDelay: Infinity }).on('line', (line) => sink(this.name, line, stream));
    }
    this.exited = new Promise((resolve) => {
      this.child.once('error', (error) => {
        // 'error' without a pid: spawning failed and no 'exit' follows.
        if (this.child.pid === undefined) resolve((this.exit = { code: null, signal: null, error }));
      });
      this.child.once('exit', (code, signal) => resolve((this.exit = { code, signal })));
    });
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  /** How it ended, once it has. */
  get exitInfo(): ExitInfo | undefined {
    return this.exit;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** The underlying process, for helpers that watch it (waitForEmulator). */
  get process(): ChildProcess {
    return this.child;
  }

  /** `signal` (SIGTERM unless told), then SIGKILL after `graceMs`; resolves once the process is gone. */
  async stop(graceMs: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<ExitInfo> {
    if (this.exit) return this.exit;
    this.signal(signal);
    const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Last resort on the runner's own exit: synchronous, no waiting. */
  kill(): void {
    if (this.running) this.signal('SIGKILL');
  }

  private signal(sig: NodeJS.Signals): void {
    try {
      this.child.kill(sig);
    } catch {
      // already gone
    }
  }
}
