import { CopyObjectCommand, DeleteObjectCommand, PutBucketNotificationConfigurationCommand, PutObjectCommand, PutObjectTaggingCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { BackupConfig } from '@scs/backup-sync/config';
import { Backups } from '@scs/backup-sync/services/backups';
import { Reconciler } from '@scs/backup-sync/services/reconciler';
import { type AwsClients, createAwsClients, loadConfig, ServerSideCopier } from '@scs/common';
import { provision, ResourceNames } from '@scs/local-stack/provision';
import { FileRepository } from '@scs/common/files';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { type BenchContext, freePort, repoRoot } from './lib/context';
import { type LoadResult, percentile, summarise } from './lib/load';
import { GeneratedFile } from './lib/payload';
import { ProcessSampler, type ProcessUsage } from './lib/proc-stats';
import { atMost, type BenchmarkReport, type Goal, type ScenarioResult } from './lib/report';
import { purgeVersions } from './lib/s3';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const GOALS = { lagP95Ms: 2_000, memoryGrowthMiB: 16 };
const SETTLE_MS = 120_000;

/** The sizes of one run; BENCH_PIPELINE_SCALE (default 1) shrinks them for quick local runs. */
export function pipelineSizesFrom(env: Record<string, string | undefined>) {
  const raw = Number(env.BENCH_PIPELINE_SCALE);
  const scale = Number.isFinite(raw) && raw > 0 && raw <= 1 ? raw : 1;
  return {
    scale,
    uploads: Math.max(5, Math.round(200 * scale)),
    sensitiveUploads: Math.max(3, Math.round(20 * scale)),
    reconcileObjects: Math.max(100, Math.round(10_000 * scale)),
    largeMove: Math.max(16 * MiB, Math.round((GiB * scale) / MiB) * MiB),
    smallMove: MiB,
  };
}

const round = (n: number, digits = 2) => Number(n.toFixed(digits));
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const sizeLabel = (bytes: number) => (bytes >= GiB && bytes % GiB === 0 ? `${bytes / GiB} GiB` : `${round(bytes / MiB, 0)} MiB`);

/** Buckets and queues of one scenario's own (the running backup-sync and runner never see their events). */
function ownResources(tag: string): { id: string; names: ResourceNames } {
  const id = randomBytes(3).toString('hex');
  const prefix = `bench-${tag}-${id}`;
  return {
    id,
    names: loadConfig(ResourceNames, {
      PRIMARY_BUCKET: `${prefix}-primary`,
      SENSITIVE_BUCKET: `${prefix}-sensitive`,
      BACKUP_BUCKET: `${prefix}-backup`,
      OBJECT_EVENTS_QUEUE: `${prefix}-object-events`,
      BACKUP_EVENTS_QUEUE: `${prefix}-backup-events`,
    }),
  };
}

/** A load-shaped result from one sample per file (for the shared table). */
function loadOf(samplesMs: number[], expected: number, connections: number, wallSeconds: number): LoadResult {
  return {
    connections,
    durationSeconds: round(wallSeconds),
    requests: samplesMs.length,
    rps: round(samplesMs.length / Math.max(wallSeconds, 0.001), 3),
    latencyMs: summarise(samplesMs),
    non2xx: 0,
    errors: expected - samplesMs.length,
    // Each sample is one file that made it (a 2xx for the shared table).
    statusCodes: samplesMs.length ? { '200': samplesMs.length } : {},
  };
}

/** Runs `count` tasks, `concurrency` at a time. */
async function inBatches(count: number, concurrency: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      for (let i = next++; i < count; i = next++) await task(i);
    }),
  );
}

/** A process of the pipeline whose JSON log lines are watched (the time a file was done is in them). */
interface Watched {
  child: ChildProcess;
  /** Resolves with the log time (ms) of the first line for `key` whose message starts with `msg`. */
  doneAt(key: string, msg: string): Promise<number>;
  output(): string;
}

function watchLogs(name: string, child: ChildProcess): Watched {
  const seen = new Map<string, number>();
  const waiting = new Map<string, (t: number) => void>();
  let tail = '';
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    createInterface({ input: stream }).on('line', (line) => {
      tail = `${tail}${line}\n`.slice(-8_000);
      if (!line.startsWith('{')) return;
      const entry = JSON.parse(line) as { key?: string; msg?: string; time?: number };
      if (!entry.key || !entry.msg || !entry.time) return;
      const id = `${entry.key}\n${entry.msg}`;
      if (!seen.has(id)) seen.set(id, entry.time);
      waiting.get(id)?.(entry.time);
    });
  }
  return {
    child,
    output: () => tail,
    doneAt: (key, msg) =>
      new Promise<number>((resolve, reject) => {
        const id = `${key}\n${msg}`;
        const found = seen.get(id);
        if (found !== undefined) return resolve(found);
        const timer = setTimeout(() => reject(new Error(`${name} did not log "${msg}" for ${key} within ${SETTLE_MS} ms`)), SETTLE_MS);
        waiting.set(id, (t) => {
          clearTimeout(timer);
          resolve(t);
        });
      }),
  };
}

/**
 * Pipeline benchmark (the sensitive mover's runner and backup-sync as their own processes, on
 * one emulator):
 * 1. Event-to-backup lag: N files written as the upload service writes them (object with its tags
 *    and encryption, then the sha256 tag, then the record); lag = object created -> verified backup
 *    copy (backup-sync's log time). p50/p95, goal p95 < 2 s.
 * 2. Upload-to-moved: M sensitive files, object created -> moved to the vault (the runner's log time).
 * 3. Reconcile of K objects already in sync (in-process, S3 requests counted by command): time,
 *    list calls vs the ideal ceil(K/1000) per listing, copies (goal 0).
 * 4. Handler memory: peak RSS of the bundled Lambda handler (dist/lambda/index.js, a fresh process)
 *    moving a 1 MiB and a 1 GiB object; goal: the same within 16 MiB (no byte passes through it).
 */
export async function pipelineBenchmark(ctx: BenchContext): Promise<BenchmarkReport> {
  const startedAt = new Date();
  const sizes = pipelineSizesFrom(process.env);
  const emulator = await ctx.emulator();
  const scenarios: ScenarioResult[] = [];
  const failures: string[] = [];
  const summary: string[] = [];
  const facts: Record<string, unknown> = { scale: sizes.scale };
  const sdk = { AWS_REGION: emulator.env.AWS_REGION as string, AWS_ENDPOINT_URL: emulator.endpoint, AWS_MAX_ATTEMPTS: 3, AWS_REQUEST_TIMEOUT_MS: 60_000 };
  const aws = createAwsClients(sdk);
  const names = loadConfig(ResourceNames, {});
  const files = new FileRepository(aws.dynamo, names.FILES_TABLE, { warn: (o, m) => ctx.log(`${m} ${JSON.stringify(o)}`), error: (o, m) => ctx.log(`${m} ${JSON.stringify(o)}`) });
  const common = { ...emulator.env, LOG_LEVEL: 'info', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
  const created: { bucket: string; prefix: string }[] = [];

  /** A file as the upload service stores it; resolves when the object exists (the event is out) and when all is written. */
  const writeFile = async (userId: string, content: Buffer, sensitive: boolean): Promise<{ key: string; createdAt: number }> => {
    const fileId = randomUUID();
    const key = `users/${userId}/${fileId}`;
    const digest = sha256(content);
    await aws.s3.send(
      new PutObjectCommand({
        Bucket: names.PRIMARY_BUCKET,
        Key: key,
        Body: content,
        ContentType: 'text/plain',
        ContentDisposition: `attachment; filename="bench.txt"`,
        ServerSideEncryption: 'AES256',
        Tagging: `sensitive=${sensitive}`,
        Metadata: { owner: userId, 'file-id': fileId },
      }),
    );
    const createdAt = Date.now();
    await aws.s3.send(
      new PutObjectTaggingCommand({ Bucket: names.PRIMARY_BUCKET, Key: key, Tagging: { TagSet: [{ Key: 'sensitive', Value: String(sensitive) }, { Key: 'sha256', Value: digest }] } }),
    );
    await files.createActive({ userId, fileId, name: 'bench.txt', size: content.length, contentType: 'text/plain', sha256: digest, sensitive, status: 'active', key, createdAt: new Date().toISOString() }, 0);
    return { key, createdAt };
  };

  try {
    const backupPort = await freePort();
    ctx.log(`starting backup-sync on :${backupPort} and the sensitive mover's runner`);
    const backup = await ctx.registry.startNode({
      name: 'backup-sync',
      script: join(repoRoot, 'services/backup-sync/dist/server.js'),
      cwd: repoRoot,
      port: backupPort,
      readyPath: '/ready',
      env: { ...common, HOST: '127.0.0.1', PORT: String(backupPort), RECONCILE_INTERVAL_SECONDS: '86400' },
    });
    const backupLogs = watchLogs('backup-sync', backup.child);
    const runnerChild = spawn(process.execPath, [join(repoRoot, 'services/sensitive-mover/dist/runner.js')], {
      cwd: repoRoot,
      env: { PATH: process.env.PATH ?? '', ...common, MOVER_POLL_SECONDS: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    ctx.registry.add({
      name: 'sensitive-mover runner',
      child: runnerChild,
      stop: () => new Promise<void>((resolve) => (runnerChild.exitCode !== null ? resolve() : (runnerChild.once('exit', () => resolve()), runnerChild.kill('SIGTERM')))),
    });
    const runner = watchLogs('runner', runnerChild);

    // 1. Event-to-backup lag.
    ctx.log(`lag: ${sizes.uploads} files, 4 at a time`);
    const userId = randomUUID();
    created.push({ bucket: names.PRIMARY_BUCKET, prefix: `users/${userId}/` }, { bucket: names.SENSITIVE_BUCKET, prefix: `users/${userId}/` }, { bucket: names.BACKUP_BUCKET, prefix: `users/${userId}/` });
    const lags: number[] = [];
    const lagStarted = performance.now();
    const backupCpu = ProcessSampler.start(backup.pid, 100);
    await inBatches(sizes.uploads, 4, async () => {
      const file = await writeFile(userId, randomBytes(4096), false);
      lags.push((await backupLogs.doneAt(file.key, 'backup-sync: Object Created: copied')) - file.createdAt);
    });
    const backupUsage = backupCpu?.stop();
    const sortedLags = [...lags].sort((a, b) => a - b);
    const p95 = round(percentile(sortedLags, 95), 1);
    scenarios.push({
      scenario: 'event-to-backup lag',
      target: `${sizes.uploads} x 4 KiB files, object created -> verified backup copy`,
      connections: 4,
      load: loadOf(lags, sizes.uploads, 4, (performance.now() - lagStarted) / 1000),
      server: backupUsage ? { name: 'backup-sync', ...backupUsage } : null,
      serverCpuMsPerRequest: backupUsage && lags.length ? round((backupUsage.cpuSeconds * 1000) / lags.length, 3) : null,
      goal: atMost(`lag p95 < ${GOALS.lagP95Ms} ms`, p95, GOALS.lagP95Ms, 'ms'),
      note: `p50 ${round(percentile(sortedLags, 50), 1)} ms, p95 ${p95} ms`,
    });

    // 2. Upload-to-moved.
    ctx.log(`moves: ${sizes.sensitiveUploads} sensitive files`);
    const moved: number[] = [];
    const moveStarted = performance.now();
    await inBatches(sizes.sensitiveUploads, 2, async () => {
      const file = await writeFile(userId, randomBytes(4096), true);
      moved.push((await runner.doneAt(file.key, 'sensitive mover: moved')) - file.createdAt);
    });
    const sortedMoved = [...moved].sort((a, b) => a - b);
    scenarios.push({
      scenario: 'upload-to-moved',
      target: `${sizes.sensitiveUploads} sensitive 4 KiB files, object created -> in the vault, source removed, record updated`,
      connections: 2,
      load: loadOf(moved, sizes.sensitiveUploads, 2, (performance.now() - moveStarted) / 1000),
      server: null,
      serverCpuMsPerRequest: null,
      note: `p50 ${round(percentile(sortedMoved, 50), 1)} ms, p95 ${round(percentile(sortedMoved, 95), 1)} ms (in-handler wait for the record included)`,
    });

    // 3. Reconcile of objects in sync, on buckets of its own (no events consumed there).
    scenarios.push(await reconcileScenario(ctx, sdk, sizes.reconcileObjects, created));

    // 4. Handler memory.
    scenarios.push(...(await memoryScenarios(ctx, aws, sdk, emulator.env, [sizes.smallMove, sizes.largeMove], summary, created)));

    facts.backupSyncPeakRssMiB = backupUsage?.peakRssMiB;
    summary.push(
      `Lag = from S3's answer to the PutObject (the object-created event is out) to backup-sync's log line for the verified copy (same clock); ` +
        `the upload service's sha256 tag and record follow the object within milliseconds, as in the product.`,
      `Upload-to-moved includes the runner's long poll (1 s) and the handler's wait for the record; on AWS, S3 invokes the Lambda directly.`,
    );
  } catch (err) {
    failures.push(`pipeline: ${(err as Error).message}`);
  } finally {
    for (const c of created) await purgeVersions(aws.s3, c.bucket, c.prefix).catch(() => undefined);
    aws.destroy();
  }
  return { name: 'pipeline', startedAt: startedAt.toISOString(), finishedAt: new Date().toISOString(), facts, scenarios, summary, failures };
}

async function reconcileScenario(
  ctx: BenchContext,
  sdk: Parameters<typeof createAwsClients>[0],
  count: number,
  created: { bucket: string; prefix: string }[],
): Promise<ScenarioResult> {
  const { id, names } = ownResources('recon');
  const setup = createAwsClients(sdk);
  const counts: Record<string, number> = {};
  const counted = createAwsClients(sdk);
  counted.s3.middlewareStack.add(
    (next, context) => async (args) => {
      counts[context.commandName as string] = (counts[context.commandName as string] ?? 0) + 1;
      return next(args);
    },
    { step: 'initialize', name: 'countRequests' },
  );
  try {
    await provision(setup, names);
    // A reconcile needs no events, and the emulator slows down with every event waiting in a
    // queue nobody reads (10,000 notifications made seeding quadratic: hours instead of minutes).
    for (const Bucket of [names.PRIMARY_BUCKET, names.SENSITIVE_BUCKET]) {
      await setup.s3.send(new PutBucketNotificationConfigurationCommand({ Bucket, NotificationConfiguration: {} }));
    }
    for (const b of [names.PRIMARY_BUCKET, names.BACKUP_BUCKET]) created.push({ bucket: b, prefix: 'users/' });
    ctx.log(`reconcile: writing ${count} objects and their backups`);
    await inBatches(count, 16, async (i) => {
      const key = `users/${id}/${String(i).padStart(6, '0')}`;
      await setup.s3.send(new PutObjectCommand({ Bucket: names.PRIMARY_BUCKET, Key: key, Body: `object ${i}`, ServerSideEncryption: 'AES256' }));
      await setup.s3.send(
        new CopyObjectCommand({ Bucket: names.BACKUP_BUCKET, Key: key, CopySource: `${names.PRIMARY_BUCKET}/${key}`, ServerSideEncryption: 'aws:kms', SSEKMSKeyId: names.BACKUP_KMS_KEY_ID }),
      );
    });
    const config = loadConfig(BackupConfig, { ...Object.fromEntries(Object.entries(names).map(([k, v]) => [k, String(v)])) });
    const backups = new Backups(counted.s3, new ServerSideCopier(counted.s3, counted.kms), new FileRepository(counted.dynamo, names.FILES_TABLE, { warn: () => undefined, error: () => undefined }), config);
    const reconciler = new Reconciler(counted.s3, backups, config, { warn: (o, m) => ctx.log(`${m} ${JSON.stringify(o)}`) });
    ctx.log('reconcile: measuring');
    const cpu = process.cpuUsage();
    const result = await reconciler.run();
    const used = process.cpuUsage(cpu);
    const pages = Math.ceil(count / 1000);
    // Listings: primary and backup (pages each), the empty sensitive bucket and deleted/ prefix (1 each).
    const ideal = 2 * pages + 2;
    const lists = counts.ListObjectsV2Command ?? 0;
    const others = Object.entries(counts).filter(([k]) => k !== 'ListObjectsV2Command');
    const goal: Goal = {
      description: `S3 requests = ${ideal} list calls (ceil(N/1000) per bucket listing), 0 copies`,
      value: lists + others.reduce((a, [, n]) => a + n, 0),
      limit: ideal,
      unit: 'requests',
      met: lists === ideal && others.length === 0 && result.copied === 0 && result.alreadyInSync === count,
    };
    return {
      scenario: 'reconcile, all in sync',
      target: `${count} objects (primary) with their backups`,
      connections: 1,
      load: loadOf([result.durationMs], 1, 1, result.durationMs / 1000),
      server: null,
      serverCpuMsPerRequest: null,
      goal,
      note:
        `${result.durationMs} ms (${round(result.durationMs / count, 3)} ms/object, ${round(((used.user + used.system) / 1000) / count, 3)} ms CPU/object in-process); ` +
        `requests ${JSON.stringify(counts)}; copied ${result.copied}, alreadyInSync ${result.alreadyInSync}, failed ${result.failed}`,
    };
  } finally {
    setup.destroy();
    counted.destroy();
  }
}

/** Peak RSS of the bundled handler (a fresh process, as a Lambda container) moving objects of the given sizes. */
async function memoryScenarios(
  ctx: BenchContext,
  aws: AwsClients,
  sdk: Parameters<typeof createAwsClients>[0],
  emulatorEnv: Record<string, string>,
  moveSizes: number[],
  summary: string[],
  created: { bucket: string; prefix: string }[],
): Promise<ScenarioResult[]> {
  const bundle = join(repoRoot, 'services/sensitive-mover/dist/lambda/index.js');
  const built = spawnSync(process.execPath, [join(repoRoot, 'services/sensitive-mover/scripts/bundle.mjs')], { cwd: repoRoot, encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`bundling the handler failed: ${built.stderr}`);
  // Buckets of their own: backup-sync (running on the default ones) stays out of the measurement.
  const { names } = ownResources('move');
  const setup = createAwsClients(sdk);
  try {
    await provision(setup, names);
  } finally {
    setup.destroy();
  }
  created.push({ bucket: names.SENSITIVE_BUCKET, prefix: 'users/' }, { bucket: names.PRIMARY_BUCKET, prefix: 'users/' });
  const files = new FileRepository(aws.dynamo, names.FILES_TABLE, { warn: (o, m) => ctx.log(`${m} ${JSON.stringify(o)}`), error: (o, m) => ctx.log(`${m} ${JSON.stringify(o)}`) });
  const results: { size: number; usage: ProcessUsage | undefined; ms: number; outcome: string }[] = [];
  for (const size of moveSizes) {
    ctx.log(`handler memory: writing a ${sizeLabel(size)} sensitive object`);
    const userId = randomUUID();
    const fileId = randomUUID();
    const key = `users/${userId}/${fileId}`;
    const file = new GeneratedFile(size, size % 9973, Buffer.from('bench'));
    await new Upload({
      client: aws.s3,
      params: { Bucket: names.PRIMARY_BUCKET, Key: key, Body: Readable.from(file.chunks(), { objectMode: false, highWaterMark: MiB }), ServerSideEncryption: 'AES256', Tagging: 'sensitive=true' },
      partSize: 16 * MiB,
      queueSize: 2,
    }).done();
    await files.createActive({ userId, fileId, name: 'big.bin', size, contentType: 'application/octet-stream', sha256: file.sha256(), sensitive: true, status: 'active', key, createdAt: new Date().toISOString() }, 0);
    const event = { Records: [{ eventSource: 'aws:s3', eventName: 'ObjectCreated:CompleteMultipartUpload', s3: { bucket: { name: names.PRIMARY_BUCKET }, object: { key } } }] };
    // The child reports and then waits: its memory is read before it exits (/proc is gone after).
    const script = `require(process.argv[1]).handler(JSON.parse(process.argv[2]), { awsRequestId: 'bench' })
      .then((r) => process.stdout.write(JSON.stringify(r) + '\\n'), (e) => process.stdout.write(JSON.stringify({ error: String(e) }) + '\\n'))
      .then(() => process.stdin.once('data', () => process.exit(0)));`;
    const t0 = performance.now();
    const child = spawn(process.execPath, ['-e', script, bundle, JSON.stringify(event)], {
      env: { PATH: process.env.PATH ?? '', ...emulatorEnv, ...Object.fromEntries(Object.entries(names).map(([k, v]) => [k, String(v)])), LOG_LEVEL: 'warn', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', AWS_REQUEST_TIMEOUT_MS: '600000' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const sampler = ProcessSampler.start(child.pid, 20);
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const line = await new Promise<string>((resolve) => {
      if (!child.stdout) return resolve('');
      createInterface({ input: child.stdout }).once('line', resolve);
      child.once('exit', () => resolve(''));
    });
    const usage = sampler?.stop();
    child.stdin?.end('done');
    await exited;
    const report = (line ? JSON.parse(line) : { error: stderr.slice(0, 300) }) as { results?: { outcome: string }[]; error?: string };
    const outcome = report.results?.[0]?.outcome ?? `failed: ${report.error ?? 'no answer'}`;
    results.push({ size, usage, ms: performance.now() - t0, outcome });
    await aws.s3.send(new DeleteObjectCommand({ Bucket: names.SENSITIVE_BUCKET, Key: key })).catch(() => undefined);
  }
  const [small, large] = results;
  const growth = small?.usage && large?.usage ? round(large.usage.lifetimePeakRssMiB - small.usage.lifetimePeakRssMiB, 1) : Number.NaN;
  summary.push(
    `Handler memory: the bundled handler in a fresh process (as a Lambda container): ` +
      results.map((r) => `${sizeLabel(r.size)} move ${r.usage?.lifetimePeakRssMiB ?? '-'} MiB peak RSS in ${round(r.ms / 1000, 1)} s (${r.outcome})`).join(', ') +
      `; growth ${growth} MiB. S3 copies the bytes (CopyObject below 5 GiB, UploadPartCopy above); the handler sees none of them.`,
  );
  return results.map((r, i) => ({
    scenario: `handler memory, ${sizeLabel(r.size)} move`,
    target: 'bundled Lambda handler (dist/lambda/index.js), fresh process',
    connections: 1,
    load: loadOf(r.outcome === 'moved' ? [r.ms] : [], 1, 1, r.ms / 1000),
    server: r.usage ? { name: 'handler', ...r.usage } : null,
    serverCpuMsPerRequest: r.usage ? round(r.usage.cpuSeconds * 1000, 1) : null,
    ...(i === 1 ? { goal: atMost(`peak RSS growth vs ${sizeLabel(small?.size ?? 0)} <= ${GOALS.memoryGrowthMiB} MiB`, growth, GOALS.memoryGrowthMiB, 'MiB') } : {}),
    note: r.outcome,
  }));
}
