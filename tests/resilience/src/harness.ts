import { type AwsClients, createAwsClients, loadConfig } from '@scs/common';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, readdirSync, readFileSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ResourceNames } from '@scs/local-stack/provision';
import { StackConfig } from '@scs/local-stack/stack/config';
import { StackOutput } from '@scs/local-stack/stack/output';
import { LOCAL_AWS, Stack } from '@scs/local-stack/stack/run';
import { FaultProxy } from '@scs/testing/fault-proxy';
import { scrapeMetrics } from '@scs/testing/metrics';
import { readProc } from '@scs/testing/proc-stats';
import { freeStackPorts, type StackPorts } from '@scs/testing/stack';
import { type Account, ApiClient } from './client';
import { Ledger, type LedgerEntry } from './ledger';
import type { ResilienceSettings } from './settings';
import { type CheckOutcome, type PipelineFeatures, StorageCheck } from './storage-check';

const MiB = 1024 * 1024;
/** The upload service's default size limit (the product contract). */
const DEFAULT_MAX_UPLOAD_BYTES = 104_857_600;

/** What `verify` found after a scenario. */
export interface Verdict extends CheckOutcome {
  /** Processes that died, do not answer /health, or kept their memory; temp files left (one line each). */
  problems: string[];
  /** Memory now vs baseline per process, for the scenario's line (`upload 52/40 MiB ...`). */
  memory: string;
  /** How long after `verify` began the ledger checks first passed (or gave up). */
  checksPassedMs: number;
  /** How long the whole settling took (checks and memory). */
  settledMs: number;
}

/** The services' ports, by child name. */
type ServicePorts = Record<string, number>;

/**
 * The stack the scenarios drive, started by the same code as `npm start` (the Stack class, in
 * this process), with two fault proxies in front of the emulator: one for auth, upload and the
 * mover, one for backup-sync, so either side can lose AWS on its own. Keeps the ledger, the
 * accounts, the memory baseline, and checks everything after each scenario (`verify`).
 */
export class Harness {
  readonly ledger: Ledger;
  readonly api: ApiClient;
  readonly accounts = new Map<string, Account>();
  features: PipelineFeatures = { mover: false, backup: false };
  /** The upload service's MAX_UPLOAD_BYTES. */
  readonly maxUploadBytes: number;
  admin: Account | undefined;
  private baseline: Record<string, number> = {};
  private readonly check: StorageCheck;

  private constructor(
    readonly settings: ResilienceSettings,
    readonly outputDir: string,
    readonly stack: Stack,
    readonly config: StackConfig,
    readonly names: ResourceNames,
    readonly aws: AwsClients,
    /** In front of the emulator for auth, upload and the sensitive mover. */
    readonly proxy: FaultProxy,
    /** In front of the emulator for backup-sync. */
    readonly backupProxy: FaultProxy,
    private readonly stackLog: WriteStream,
    private readonly stackTmp: string,
    private readonly adminLogin: { username: string; password: string },
    maxUploadBytes: number,
  ) {
    this.ledger = new Ledger(join(outputDir, 'ledger.jsonl'));
    this.api = new ApiClient(`http://127.0.0.1:${config.GATEWAY_PORT}`);
    this.check = new StorageCheck(aws, names);
    this.maxUploadBytes = maxUploadBytes;
  }

  /** Starts the proxies and the stack; `extraEnv` are settings for the stack's processes. */
  static async start(settings: ResilienceSettings, outputDir: string, extraEnv: Record<string, string>): Promise<Harness> {
    const ports: StackPorts = await freeStackPorts();
    const target = { host: '127.0.0.1', port: ports.EMULATOR_PORT };
    const proxy = new FaultProxy(target);
    const backupProxy = new FaultProxy(target);
    await proxy.start();
    await backupProxy.start();

    const stackTmp = join(outputDir, 'stack-tmp');
    mkdirSync(stackTmp, { recursive: true });
    const adminLogin = { username: 'resilience.admin', password: `Resilience admin ${randomBytes(12).toString('base64url')}` };
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...LOCAL_AWS,
      ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])),
      LOG_LEVEL: settings.RESILIENCE_STACK_LOG_LEVEL,
      UPLOADS_PER_MINUTE: String(settings.RESILIENCE_UPLOADS_PER_MINUTE),
      SCS_ADMIN_USERNAME: adminLogin.username,
      SCS_ADMIN_PASSWORD: adminLogin.password,
      // Temp files of the services land here, where the checks look for leftovers.
      TMPDIR: stackTmp,
      ...extraEnv,
    };
    for (const name of ['AWS_ENDPOINT_URL', 'AWS_PROFILE', 'AWS_SESSION_TOKEN']) delete env[name];
    // Provisioning (in this process) uses the SDK's default chain: the emulator's credentials.
    Object.assign(process.env, LOCAL_AWS);
    const config = loadConfig(StackConfig, env);
    const names = loadConfig(ResourceNames, env);

    const stackLog = createWriteStream(join(outputDir, 'stack.log'));
    // A full disk loses the log, not the run (the scenarios report what they see).
    stackLog.on('error', (err) => process.stderr.write(`resilience: the stack log could not be written: ${err.message}\n`));
    const out = new StackOutput({ pretty: false, emulatorRequests: false, stdout: stackLog, stderr: stackLog });
    const stack = new Stack(config, env, out, {
      awsEndpointFor: (child) => (child === 'backup-sync' ? backupProxy.url : proxy.url),
    });
    const aws = createAwsClients({
      AWS_REGION: LOCAL_AWS.AWS_REGION,
      AWS_ENDPOINT_URL: `http://127.0.0.1:${ports.EMULATOR_PORT}`,
      AWS_MAX_ATTEMPTS: 5,
      AWS_REQUEST_TIMEOUT_MS: 60_000,
    });
    const maxUploadBytes = Number(env.MAX_UPLOAD_BYTES ?? DEFAULT_MAX_UPLOAD_BYTES);
    const harness = new Harness(settings, outputDir, stack, config, names, aws, proxy, backupProxy, stackLog, stackTmp, adminLogin, maxUploadBytes);
    try {
      await stack.start();
    } catch (err) {
      await harness.stop();
      throw new Error(`the stack did not start: ${(err as Error).message}\n${harness.stackLogTail()}`);
    }
    await harness.probe();
    return harness;
  }

  /** Which parts of the event pipeline this stack has (their checks are added when present). */
  private async probe(): Promise<void> {
    this.admin = await this.api.login({ ...this.adminLogin, userId: '', token: '', tokenAt: 0 });
    const status = await this.api.json('GET', '/api/backup/status', { token: this.admin.token });
    this.features = { mover: this.stack.childNames.includes('mover'), backup: status.status === 200 };
  }

  /** The ports of the processes that listen, by child name. */
  get servicePorts(): ServicePorts {
    const c = this.config;
    return { auth: c.AUTH_PORT, upload: c.UPLOAD_PORT, 'backup-sync': c.BACKUP_PORT, gateway: c.GATEWAY_PORT };
  }

  /** A new user, remembered for the checks (its quota is read through the API). */
  async signUp(prefix: string): Promise<Account> {
    const account = await this.api.signUp(prefix);
    this.accounts.set(account.userId, account);
    return account;
  }

  /** RSS in MiB of every Node process of the stack (the emulator is not the product). */
  rss(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const name of this.stack.childNames) {
      if (name === 'emulator') continue;
      const pid = this.stack.child(name)?.pid;
      const reading = pid ? readProc(pid) : undefined;
      if (reading) out[name] = reading.rssBytes / MiB;
    }
    return out;
  }

  /**
   * The memory each process holds, in MiB: for the services, what is alive in it (V8 heap used +
   * external memory, Buffers included, from its own /metrics), which returns to its level once
   * the work is done and garbage is collected; for the others (gateway, mover), RSS. RSS alone
   * is no measure of a leak in the services: the allocator keeps freed upload buffers mapped.
   */
  async memory(): Promise<Record<string, number>> {
    const out = this.rss();
    await Promise.all(
      Object.entries(this.servicePorts)
        .filter(([name]) => name !== 'gateway')
        .map(async ([name, port]) => {
          const metrics = await scrapeMetrics(`http://127.0.0.1:${port}/metrics`);
          const heap = metrics?.get('nodejs_heap_size_used_bytes');
          const external = metrics?.get('nodejs_external_memory_bytes');
          if (heap !== undefined && external !== undefined) out[name] = (heap + external) / MiB;
        }),
    );
    return out;
  }

  /** Takes the memory baseline that `verify` compares with. */
  async takeBaseline(): Promise<void> {
    this.baseline = await this.memory();
  }

  /** Problems with the stack's processes: dead (not on purpose), or not answering /health. */
  async processProblems(): Promise<string[]> {
    const problems: string[] = [];
    for (const name of this.stack.childNames) {
      const child = this.stack.child(name);
      if (!child?.running) problems.push(`${name} is not running (${child?.exitInfo ? JSON.stringify(child.exitInfo) : 'never started'})`);
    }
    for (const [name, port] of Object.entries(this.servicePorts)) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(5_000) });
        await res.arrayBuffer();
        if (res.status !== 200) problems.push(`${name} /health answered ${res.status}`);
      } catch (err) {
        problems.push(`${name} /health: ${(err as Error).message}`);
      }
    }
    return problems;
  }

  /**
   * After a scenario: waits (up to RESILIENCE_SETTLE_SECONDS) for the stack to settle, i.e. the
   * ledger checks pass (backups made, sensitive files moved) and memory is back near the baseline,
   * then checks once more reading every object back (unless `digests` is false: a scenario that
   * compared the bytes itself), and reports what is still wrong.
   */
  async verify(entries: LedgerEntry[], opts: { digests?: boolean } = {}): Promise<Verdict> {
    const started = performance.now();
    const deadline = started + this.settings.RESILIENCE_SETTLE_SECONDS * 1000;
    const usedBytes = async (userId: string) => {
      const account = this.accounts.get(userId);
      if (!account) throw new Error(`user ${userId} was not signed up through the harness`);
      return this.api.usedBytes(account);
    };
    const check = (digests: boolean) => this.check.check(entries, { features: this.features, digests, usedBytes });

    let outcome = await check(false);
    while ((outcome.lost.length || outcome.phantom.length) && performance.now() < deadline) {
      await sleep(1_000);
      outcome = await check(false);
    }
    const checksPassedMs = performance.now() - started;
    let memoryProblems = await this.memoryProblems();
    while (memoryProblems.length && performance.now() < deadline) {
      await sleep(1_000);
      memoryProblems = await this.memoryProblems();
    }
    const settledMs = performance.now() - started;
    if (!outcome.lost.length && !outcome.phantom.length) outcome = await check(opts.digests ?? true);
    const problems = [...(await this.processProblems()), ...memoryProblems, ...this.tempFiles()];
    const now = await this.memory();
    const rss = this.rss();
    const memory = Object.entries(now)
      .map(([name, mib]) => `${name} ${Math.round(mib)}/${Math.round(this.baseline[name] ?? 0)}`)
      .join(', ');
    return {
      ...outcome,
      problems,
      memory: `${memory} MiB now/baseline (services: heap + external; others: RSS; upload RSS ${Math.round(rss.upload ?? 0)} MiB)`,
      checksPassedMs,
      settledMs,
    };
  }

  private async memoryProblems(): Promise<string[]> {
    const s = this.settings;
    const problems: string[] = [];
    for (const [name, mib] of Object.entries(await this.memory())) {
      const base = this.baseline[name];
      if (base === undefined) continue;
      const limit = base * s.RESILIENCE_MEMORY_FACTOR + s.RESILIENCE_MEMORY_SLACK_MIB;
      if (mib > limit) problems.push(`${name} holds ${Math.round(mib)} MiB after settling, over ${Math.round(limit)} (baseline ${Math.round(base)} MiB)`);
    }
    return problems;
  }

  /** Files the stack's processes left in their temp folder (uploads must never touch the disk). */
  private tempFiles(): string[] {
    const left = readdirSync(this.stackTmp);
    return left.length ? [`temp files left: ${left.slice(0, 5).join(', ')}${left.length > 5 ? ` and ${left.length - 5} more` : ''}`] : [];
  }

  /** The last lines of the stack's log, for a failure message. */
  stackLogTail(lines = 40): string {
    try {
      return readFileSync(join(this.outputDir, 'stack.log'), 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }

  /** Stops the stack and the proxies (idempotent). */
  async stop(): Promise<void> {
    this.api.close();
    await this.stack.stop();
    await this.proxy.stop();
    await this.backupProxy.stop();
    this.aws.destroy();
    await new Promise<void>((resolve) => this.stackLog.end(() => resolve()));
  }
}
