import { createRequire } from 'node:module';
import type { prettyFactory as PrettyFactory } from 'pino-pretty';
import type { LineSink } from './child';

/** werkzeug's access-log line: `127.0.0.1 - - [22/Nov/2026 07:53:19] "GET /x HTTP/1.1" 200 -`. */
const EMULATOR_REQUEST_LINE = /^\S+ - - \[[^\]]*\] "/;

type Prettifier = (line: string) => string;

/** pino-pretty (a dev dependency) for a person at a terminal; undefined when it is not installed. */
function loadPrettifier(): Prettifier | undefined {
  try {
    const { prettyFactory } = createRequire(__filename)('pino-pretty') as { prettyFactory: typeof PrettyFactory };
    const pretty = prettyFactory({ colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' });
    return (line) => (line.startsWith('{') ? pretty(line).replace(/\n+$/, '') : line);
  } catch {
    return undefined;
  }
}

export interface OutputOptions {
  /** Format the services' JSON log lines for a terminal (pino-pretty). */
  pretty: boolean;
  /** Show the emulator's one-line-per-request access log (noisy: every AWS call). */
  emulatorRequests: boolean;
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
}

/** The stack's output: every child line prefixed with the child's name (`auth        | ...`). */
export class StackOutput {
  private readonly width = 'backup-sync'.length;
  private readonly prettify: Prettifier | undefined;
  private readonly stdout: NodeJS.WritableStream;
  private readonly stderr: NodeJS.WritableStream;

  constructor(private readonly opts: OutputOptions) {
    this.prettify = opts.pretty ? loadPrettifier() : undefined;
    this.stdout = opts.stdout ?? process.stdout;
    this.stderr = opts.stderr ?? process.stderr;
  }

  readonly sink: LineSink = (name, line, stream) => {
    if (name === 'emulator' && !this.opts.emulatorRequests && EMULATOR_REQUEST_LINE.test(line)) return;
    let text = line;
    if (this.prettify) {
      try {
        text = this.prettify(line);
      } catch {
        // not a log line pino-pretty understands: print it as it is
      }
    }
    const prefix = this.prefix(name);
    (stream === 'stderr' ? this.stderr : this.stdout).write(`${prefix}${text.split('\n').join(`\n${prefix}`)}\n`);
  };

  /** A line of the runner itself. */
  info(msg: string): void {
    this.stdout.write(`${this.prefix('stack')}${msg}\n`);
  }

  error(msg: string): void {
    this.stderr.write(`${this.prefix('stack')}${msg}\n`);
  }

  /** Unprefixed, set apart: the line people (and the e2e test) look for. */
  banner(lines: string[]): void {
    this.stdout.write(`\n${lines.join('\n')}\n\n`);
  }

  private prefix(name: string): string {
    return `${name.padEnd(this.width)} | `;
  }
}
