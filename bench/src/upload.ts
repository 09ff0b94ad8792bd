import { Upload } from '@aws-sdk/lib-storage';
import { createAwsClients, loadConfig } from '@scs/common';
import { ResourceNames } from '@scs/scripts/dist/provision';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { Agent } from 'node:http';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { type BenchContext, freePort, repoRoot } from './lib/context';
import { type LoadResult, summarise } from './lib/load';
import { GeneratedFile, multipartFile, postStream } from './lib/payload';
import { type ProcessUsage, readProc } from './lib/proc-stats';
import { purgeVersions } from './lib/s3';
import type { NodeService, StartNodeOptions } from './lib/processes';
import { atLeast, atMost, type BenchmarkReport, compare, type Goal, packageVersion, type ScenarioResult, type Throughput } from './lib/report';
import { Watch, type WatchResult } from './lib/watch';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
/** lib-storage settings of the direct baseline; the upload service is started with the same. */
const PART_BYTES = 8 * MiB;
const QUEUE_SIZE = 4;
/** Accounts the uploads rotate through (each has its own quota). */
const USERS = 8;
const RSS_SAMPLE_MS = 50;
const REQUEST_IDLE_TIMEOUT_MS = 120_000;

const GOALS = {
  singleRatio: 0.9,
  concurrentRatio: 0.8,
  peakRssMiB: 160,
  rssGrowthMiB: 32,
  cpuSecondsPerGiB: 1.5,
};

/** The sizes of one run; BENCH_UPLOAD_SCALE (default 1) shrinks them for quick local runs. */
export function uploadSizesFrom(env: Record<string, string | undefined>) {
  const raw = Number(env.BENCH_UPLOAD_SCALE);
  const scale = Number.isFinite(raw) && raw > 0 && raw <= 1 ? raw : 1;
  const size = (bytes: number) => Math.max(MiB, Math.round((bytes * scale) / MiB) * MiB);
  return {
    scale,
    single: size(256 * MiB),
    concurrent: { count: 32, each: size(16 * MiB) },
    rssSmall: size(64 * MiB),
    rssLarge: size(GiB),
    warmup: MiB,
  };
}

/** One upload: its answer and whether it counts (201 with the right size and digest). */
interface Outcome {
  ok: boolean;
  /** HTTP status (SDK: 200 when the multipart upload completed), 0 when none arrived. */
  status: number;
  ms: number;
  bytes: number;
  /** Why it does not count, for the log. */
  problem?: string;
  /** The stored file's id (service uploads) or the scratch key (direct uploads). */
  ref?: string;
}

interface Batch {
  outcomes: Outcome[];
  wallSeconds: number;
  load: LoadResult;
  throughput: Throughput;
  watch: WatchResult;
}

const round = (n: number, digits = 2) => Number(n.toFixed(digits));
const mbps = (bytes: number, seconds: number) => (seconds > 0 ? round(bytes / seconds / 1e6, 1) : 0);
const sizeLabel = (bytes: number) => (bytes >= GiB && bytes % GiB === 0 ? `${bytes / GiB} GiB` : `${round(bytes / MiB, 0)} MiB`);

/** A load result built from the uploads of one batch (same shape as the autocannon runs). */
function loadOf(outcomes: Outcome[], connections: number, wallSeconds: number): LoadResult {
  const ok = outcomes.filter((o) => o.ok);
  const statusCodes: Record<string, number> = {};
  for (const o of outcomes) {
    // Transport failures are counted as errors (as autocannon does), not as a status. A 2xx whose
    // size or digest is wrong is an error (sha256-mismatch), not a success.
    if (o.status === 0) continue;
    const code = o.ok || o.status >= 300 ? String(o.status) : 'sha256-mismatch';
    statusCodes[code] = (statusCodes[code] ?? 0) + 1;
  }
  const errors = outcomes.filter((o) => o.status === 0).length;
  return {
    connections,
    durationSeconds: round(wallSeconds),
    requests: ok.length,
    rps: round(ok.length / wallSeconds, 3),
    latencyMs: summarise(ok.map((o) => o.ms)),
    non2xx: outcomes.length - ok.length - errors,
    errors,
    statusCodes,
  };
}

/** Adds up the usage of one process over several windows. */
function sumUsage(usages: (ProcessUsage | undefined | null)[]): ProcessUsage | undefined {
  const list = usages.filter((u): u is ProcessUsage => Boolean(u));
  if (!list.length) return undefined;
  const wallSeconds = list.reduce((a, u) => a + u.wallSeconds, 0);
  const cpuSeconds = list.reduce((a, u) => a + u.cpuSeconds, 0);
  return {
    pid: (list[list.length - 1] as ProcessUsage).pid,
    wallSeconds: round(wallSeconds),
    cpuSeconds: round(cpuSeconds),
    cpuCores: round(wallSeconds > 0 ? cpuSeconds / wallSeconds : 0),
    peakRssMiB: Math.max(...list.map((u) => u.peakRssMiB)),
    lifetimePeakRssMiB: Math.max(...list.map((u) => u.lifetimePeakRssMiB)),
    samples: list.reduce((a, u) => a + u.samples, 0),
  };
}

async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

/** CPU seconds one SHA-256 pass over 1 GiB costs in this process (a reference for the CPU row). */
function sha256SecondsPerGiB(): number {
  const buffer = Buffer.alloc(MiB, 0x5a);
  const before = process.cpuUsage();
  const hash = createHash('sha256');
  for (let i = 0; i < 256; i += 1) hash.update(buffer);
  hash.digest();
  const used = process.cpuUsage(before);
  return round(((used.user + used.system) / 1e6) * 4, 2);
}

/**
 * Upload benchmark: `POST /api/files` through the dev gateway and the upload service (each its own
 * process, real HTTP, streamed multipart bodies, the emulator behind them) against a direct
 * lib-storage multipart upload of the same bytes to the emulator (same part size and queue size),
 * measured in the same run.
 *
 * 1. One large file, each way twice (the better run of each is kept): MB/s and the ratio.
 * 2. 32 concurrent files each way: aggregate MB/s, ratio, non-201 answers.
 * 3. Peak RSS of a freshly restarted upload service while it takes a 64 MiB and a 1 GiB file.
 * 4. Upload-service CPU seconds per GiB over (2) and the 1 GiB upload; the emulator's for context.
 * Every 201's sha256 and size are checked against the bytes sent (computed while generating them).
 */
export async function uploadBenchmark(ctx: BenchContext): Promise<BenchmarkReport> {
  const startedAt = new Date();
  const sizes = uploadSizesFrom(process.env);
  const emulator = await ctx.emulator();
  const names = loadConfig(ResourceNames, {});
  const bucket = names.PRIMARY_BUCKET;
  const scenarios: ScenarioResult[] = [];
  const failures: string[] = [];
  const summary: string[] = [];
  const facts: Record<string, unknown> = {};
  const started: NodeService[] = [];
  const aws = createAwsClients({ AWS_REGION: emulator.env.AWS_REGION as string, AWS_ENDPOINT_URL: emulator.endpoint, AWS_MAX_ATTEMPTS: 3, AWS_REQUEST_TIMEOUT_MS: 10_000 });
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });

  const ports = new Set<number>();
  while (ports.size < 4) ports.add(await freePort());
  const [authPort, uploadPort, gatewayPort, backupPort] = [...ports] as [number, number, number, number];
  const common = { ...emulator.env, HOST: '127.0.0.1', LOG_LEVEL: 'warn', SHUTDOWN_GRACE_MS: '2000' };
  const maxUpload = sizes.rssLarge + MiB;
  const quota = 4 * GiB;
  const uploadOptions: StartNodeOptions = {
    name: 'upload',
    script: join(repoRoot, 'services/upload/dist/server.js'),
    cwd: repoRoot,
    port: uploadPort,
    readyPath: '/ready',
    env: {
      ...common,
      PORT: String(uploadPort),
      MAX_UPLOAD_BYTES: String(maxUpload),
      QUOTA_BYTES: String(quota),
      UPLOADS_PER_MINUTE: '100000',
      UPLOAD_PART_BYTES: String(PART_BYTES),
      UPLOAD_QUEUE_SIZE: String(QUEUE_SIZE),
    },
  };
  const start = async (opts: StartNodeOptions) => {
    const service = await ctx.registry.startNode(opts);
    started.push(service);
    return service;
  };

  try {
    ctx.log(`starting auth on :${authPort}, upload on :${uploadPort}, the gateway on :${gatewayPort}`);
    const auth = await start({
      name: 'auth',
      script: join(repoRoot, 'services/auth/dist/server.js'),
      cwd: repoRoot,
      port: authPort,
      readyPath: '/ready',
      env: { ...common, PORT: String(authPort), COOKIE_SECURE: 'false', REGISTER_RATE_LIMIT_PER_MINUTE: '100000', LOGIN_MAX_FAILURES_PER_ADDRESS: '100000' },
    });
    let upload = await start(uploadOptions);
    const gateway = await start({
      name: 'gateway',
      script: join(repoRoot, 'scripts/dist/gateway/server.js'),
      cwd: repoRoot,
      port: gatewayPort,
      readyPath: '/health',
      env: {
        HOST: '127.0.0.1',
        LOG_LEVEL: 'warn',
        GATEWAY_PORT: String(gatewayPort),
        AUTH_URL: auth.url,
        UPLOAD_URL: upload.url,
        BACKUP_URL: `http://127.0.0.1:${backupPort}`,
      },
    });

    ctx.log(`registering ${USERS} users through the gateway`);
    const tokens: string[] = [];
    for (let i = 0; i < USERS; i += 1) {
      const user = { username: `upload-${i}-${randomBytes(3).toString('hex')}`, password: `Bench ${randomBytes(12).toString('base64url')} pass` };
      const reg = await postJson(`${gateway.url}/auth/register`, user);
      if (reg.status !== 201) throw new Error(`register answered ${reg.status}: ${JSON.stringify(reg.json)}`);
      const login = await postJson(`${gateway.url}/auth/login`, user);
      if (login.status !== 200 || typeof login.json.accessToken !== 'string') throw new Error(`login answered ${login.status}: ${JSON.stringify(login.json)}`);
      tokens.push(login.json.accessToken);
    }
    const tokenFor = (i: number) => tokens[i % tokens.length] as string;
    const integrity = { checked: 0, mismatches: 0 };

    /** POST /api/files through the gateway; counts only a 201 with the right size and sha256. */
    const viaGateway = async (file: GeneratedFile, user: number): Promise<Outcome> => {
      const body = multipartFile('file', `bench-${file.seed}.png`, 'image/png', file);
      const res = await postStream(`${gateway.url}/api/files`, {
        headers: { authorization: `Bearer ${tokenFor(user)}` },
        body,
        agent,
        timeoutMs: REQUEST_IDLE_TIMEOUT_MS,
      });
      const outcome: Outcome = { ok: false, status: res.status, ms: res.ms, bytes: file.size };
      if (res.status !== 201) return { ...outcome, problem: res.error ?? `${res.status} ${res.body.slice(0, 300)}` };
      const json = JSON.parse(res.body) as { id?: string; size?: number; sha256?: string };
      const expected = file.sha256();
      integrity.checked += 1;
      if (json.sha256 !== expected || json.size !== file.size) {
        integrity.mismatches += 1;
        return { ...outcome, ref: json.id, problem: `201 with size ${json.size} sha256 ${json.sha256}, sent ${file.size} bytes with sha256 ${expected}` };
      }
      return { ...outcome, ok: true, ref: json.id };
    };

    /** The same bytes straight to the emulator with lib-storage, to a scratch key (deleted later). */
    const direct = async (file: GeneratedFile): Promise<Outcome> => {
      const key = `bench-scratch/${randomUUID()}.png`;
      const t0 = performance.now();
      try {
        await new Upload({
          client: aws.s3,
          params: {
            Bucket: bucket,
            Key: key,
            Body: Readable.from(file.chunks(), { objectMode: false, highWaterMark: MiB }),
            ContentType: 'image/png',
            ServerSideEncryption: 'AES256',
            Tagging: 'sensitive=false',
          },
          partSize: PART_BYTES,
          queueSize: QUEUE_SIZE,
          leavePartsOnError: false,
        }).done();
        return { ok: true, status: 200, ms: performance.now() - t0, bytes: file.size, ref: key };
      } catch (err) {
        return { ok: false, status: 0, ms: performance.now() - t0, bytes: file.size, ref: key, problem: (err as Error).message };
      }
    };

    /** Runs `count` uploads at once while the processes are watched. */
    const batch = async (count: number, one: (i: number) => Promise<Outcome>): Promise<Batch> => {
      const watch = await Watch.start({
        server: { name: upload.name, pid: upload.pid },
        others: { emulator: emulator.pid, gateway: gateway.pid, loadgen: process.pid },
        intervalMs: RSS_SAMPLE_MS,
      });
      const t0 = performance.now();
      const outcomes = await Promise.all(Array.from({ length: count }, (_, i) => one(i)));
      const wallSeconds = (performance.now() - t0) / 1000;
      const watched = await watch.stop();
      const okBytes = outcomes.filter((o) => o.ok).reduce((a, o) => a + o.bytes, 0);
      for (const o of outcomes.filter((x) => !x.ok)) ctx.log(`upload failed: ${o.problem ?? o.status}`);
      return { outcomes, wallSeconds, load: loadOf(outcomes, count, wallSeconds), throughput: { bytes: okBytes, MBps: mbps(okBytes, wallSeconds) }, watch: watched };
    };

    /** A table row; `serverInvolved: false` for direct uploads (the upload service only idles then). */
    const row = (scenario: string, target: string, b: Batch, extra: Pick<ScenarioResult, 'baseline' | 'goal' | 'note'> = {}, serverInvolved = true): ScenarioResult => {
      const usage = serverInvolved ? b.watch.server : null;
      const result: ScenarioResult = {
        scenario,
        target,
        connections: b.load.connections,
        load: b.load,
        server: usage,
        serverCpuMsPerRequest: usage && b.load.requests > 0 ? round((usage.cpuSeconds * 1000) / b.load.requests, 3) : null,
        others: b.watch.others,
        throughput: b.throughput,
        ...extra,
      };
      scenarios.push(result);
      if (b.load.requests === 0) {
        failures.push(`${scenario}: no upload succeeded ${JSON.stringify(b.load.statusCodes)}`);
        ctx.log(`${scenario}: last output of upload:\n${upload.output().split('\n').slice(-10).join('\n')}`);
      }
      return result;
    };
    const failed = (b: Batch) => b.load.non2xx + b.load.errors;
    const ratioGoal = (label: string, gw: Batch, base: Batch, limit: number): Goal => {
      const ratio = base.throughput.MBps > 0 ? round(gw.throughput.MBps / base.throughput.MBps, 3) : 0;
      const goal = atLeast(`MB/s ratio >= ${limit.toFixed(2)}${label}`, ratio, limit);
      return { ...goal, met: goal.met === true && failed(gw) === 0 };
    };
    const serviceIds: string[] = [];
    const remember = (b: Batch) => {
      for (const o of b.outcomes) if (o.ref && !o.ref.startsWith('bench-scratch/')) serviceIds.push(o.ref);
    };
    /** Deletes the stored files through the API, then every version in the emulator (memory). */
    const cleanUp = async () => {
      const ids = serviceIds.splice(0);
      for (let i = 0; i < ids.length; i += 8) {
        await Promise.all(
          ids.slice(i, i + 8).map(async (id, j) => {
            const res = await fetch(`${gateway.url}/api/files/${id}`, {
              method: 'DELETE',
              headers: { authorization: `Bearer ${tokenFor(i + j)}` },
              signal: AbortSignal.timeout(15_000),
            }).catch(() => undefined);
            await res?.arrayBuffer();
          }),
        );
      }
      await purgeVersions(aws.s3, bucket, 'users/');
      await purgeVersions(aws.s3, bucket, 'bench-scratch/');
    };

    let seed = 1;
    const nextFile = (size: number) => new GeneratedFile(size, seed++);

    ctx.log(`warm-up: ${sizeLabel(sizes.warmup)} each way`);
    const warm = await batch(2, (i) => (i === 0 ? direct(nextFile(sizes.warmup)) : viaGateway(nextFile(sizes.warmup), 0)));
    remember(warm);
    if (warm.load.requests < 2) throw new Error(`the warm-up uploads failed: ${warm.outcomes.map((o) => o.problem ?? o.status).join('; ')}`);

    // 1. One large file, each way twice, interleaved; the better run of each way counts.
    ctx.log(`1: one ${sizeLabel(sizes.single)} file, direct and through the gateway, twice each`);
    const singleSeed = seed++;
    const bestOf = (a: Batch | undefined, b: Batch) => (!a || b.throughput.MBps > a.throughput.MBps ? b : a);
    let bestDirect: Batch | undefined;
    let bestGateway: Batch | undefined;
    const singleRuns: { direct: number[]; gateway: number[] } = { direct: [], gateway: [] };
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const d = await batch(1, () => direct(new GeneratedFile(sizes.single, singleSeed)));
      const g = await batch(1, () => viaGateway(new GeneratedFile(sizes.single, singleSeed), attempt));
      remember(g);
      singleRuns.direct.push(d.throughput.MBps);
      singleRuns.gateway.push(g.throughput.MBps);
      bestDirect = bestOf(bestDirect, d);
      bestGateway = bestOf(bestGateway, g);
      upload.assertRunning();
    }
    const d1 = bestDirect as Batch;
    const g1 = bestGateway as Batch;
    const single = sizeLabel(sizes.single);
    row(`${single} x1: SDK direct (baseline)`, `lib-storage Upload to the emulator, ${PART_BYTES / MiB} MiB parts, queue ${QUEUE_SIZE}`, d1, {
      note: `better of 2 runs: ${singleRuns.direct.join(' / ')} MB/s`,
    }, false);
    row(`${single} x1: POST /api/files`, 'POST /api/files through the gateway and the upload service', g1, {
      baseline: compare(g1.load, d1.load, 'SDK direct'),
      goal: ratioGoal(', 0 failed', g1, d1, GOALS.singleRatio),
      note: `better of 2 runs: ${singleRuns.gateway.join(' / ')} MB/s`,
    });
    await cleanUp();

    // 2. Many files at once.
    const { count, each } = sizes.concurrent;
    const many = `${sizeLabel(each)} x${count}`;
    ctx.log(`2: ${count} concurrent ${sizeLabel(each)} files, direct and through the gateway`);
    const d2 = await batch(count, () => direct(nextFile(each)));
    const g2 = await batch(count, (i) => viaGateway(nextFile(each), i));
    remember(g2);
    upload.assertRunning();
    row(`${many}: SDK direct (baseline)`, `${count} lib-storage Uploads at once`, d2, {}, false);
    row(`${many}: POST /api/files`, `${count} uploads at once through the gateway`, g2, {
      baseline: compare(g2.load, d2.load, 'SDK direct'),
      goal: ratioGoal(', 0 non-201', g2, d2, GOALS.concurrentRatio),
      note: `aggregate MB/s of ${count} uploads; non-201 answers: ${failed(g2)}`,
    });
    await cleanUp();

    // 3. Memory: a fresh upload service per file, so each peak is that file's.
    const rss: { size: number; batch: Batch; beforeMiB: number; peakMiB: number }[] = [];
    for (const size of [sizes.rssSmall, sizes.rssLarge]) {
      ctx.log(`3: upload-service RSS while it takes ${sizeLabel(size)} (restarted first)`);
      await upload.stop();
      upload = await start(uploadOptions);
      // One small upload first, so the code paths and connection pools the big one uses are set up.
      let warmed = await viaGateway(nextFile(sizes.warmup), 0);
      if (!warmed.ok) warmed = await viaGateway(nextFile(sizes.warmup), 0);
      if (!warmed.ok) throw new Error(`the warm-up upload after the restart failed: ${warmed.problem}`);
      if (warmed.ref) serviceIds.push(warmed.ref);
      await new Promise((r) => setTimeout(r, 500));
      const before = readProc(upload.pid);
      const b = await batch(1, () => viaGateway(nextFile(size), 1));
      remember(b);
      upload.assertRunning();
      const usage = b.watch.server;
      const peakMiB = usage ? Math.max(usage.peakRssMiB, usage.lifetimePeakRssMiB) : Number.NaN;
      rss.push({ size, batch: b, beforeMiB: before ? round(before.rssBytes / MiB, 1) : Number.NaN, peakMiB });
      await cleanUp();
    }
    const [small, large] = rss as [(typeof rss)[0], (typeof rss)[0]];
    const rssNote = (r: (typeof rss)[0]) =>
      `fresh process + ${sizeLabel(sizes.warmup)} warm-up; RSS before ${r.beforeMiB} MiB, peak ${r.peakMiB} MiB (max of VmRSS every ${RSS_SAMPLE_MS} ms and VmHWM), delta +${round(r.peakMiB - r.beforeMiB, 1)} MiB`;
    row(`${sizeLabel(small.size)} x1: upload RSS`, 'POST /api/files through the gateway, upload service restarted', small.batch, {
      goal: atMost(`peak RSS <= ${GOALS.peakRssMiB} MiB`, small.peakMiB, GOALS.peakRssMiB, 'MiB'),
      note: rssNote(small),
    });
    const largeGoal = atMost(`peak RSS <= ${GOALS.peakRssMiB}, <= ${sizeLabel(small.size)} run + ${GOALS.rssGrowthMiB}`, large.peakMiB, GOALS.peakRssMiB, 'MiB');
    row(`${sizeLabel(large.size)} x1: upload RSS`, 'POST /api/files through the gateway, upload service restarted', large.batch, {
      goal: { ...largeGoal, met: largeGoal.met === true && large.peakMiB <= small.peakMiB + GOALS.rssGrowthMiB },
      note: `${rssNote(large)}; growth over the ${sizeLabel(small.size)} run ${round(large.peakMiB - small.peakMiB, 1)} MiB`,
    });

    // 4. CPU per GiB stored, over scenario 2 and the large file.
    const cpuBatches = [g2, large.batch];
    const outcomes = cpuBatches.flatMap((b) => b.outcomes);
    const wall = cpuBatches.reduce((a, b) => a + b.wallSeconds, 0);
    const bytes = cpuBatches.reduce((a, b) => a + b.throughput.bytes, 0);
    const gib = bytes / GiB;
    const serverUsage = sumUsage(cpuBatches.map((b) => b.watch.server));
    const othersUsage: Record<string, ProcessUsage> = {};
    for (const name of ['emulator', 'gateway', 'loadgen']) {
      const u = sumUsage(cpuBatches.map((b) => b.watch.others[name]));
      if (u) othersUsage[name] = u;
    }
    const perGiB = (u: ProcessUsage | undefined, g = gib) => (u && g > 0 ? round(u.cpuSeconds / g, 3) : Number.NaN);
    const directGiB = d2.throughput.bytes / GiB;
    const cpuLoad = loadOf(outcomes, count, wall);
    scenarios.push({
      scenario: `CPU per GiB (${many} + ${sizeLabel(large.size)})`,
      target: 'upload service, over the windows of the two gateway runs',
      connections: count,
      load: cpuLoad,
      server: serverUsage ? { name: 'upload', ...serverUsage } : null,
      serverCpuMsPerRequest: serverUsage && cpuLoad.requests ? round((serverUsage.cpuSeconds * 1000) / cpuLoad.requests, 3) : null,
      others: othersUsage,
      throughput: { bytes, MBps: mbps(bytes, wall) },
      goal: atMost(`upload CPU <= ${GOALS.cpuSecondsPerGiB} s/GiB`, perGiB(serverUsage), GOALS.cpuSecondsPerGiB, 's/GiB'),
      note:
        `emulator ${perGiB(othersUsage.emulator)} s/GiB (fed directly by the SDK: ${perGiB(d2.watch.others.emulator, directGiB)} s/GiB), ` +
        `gateway ${perGiB(othersUsage.gateway)} s/GiB, load generator ${perGiB(othersUsage.loadgen)} s/GiB`,
    });

    const sdkClientPerGiB = perGiB(d2.watch.others.loadgen, directGiB);
    const shaPerGiB = sha256SecondsPerGiB();
    summary.push(
      `MB/s = 10^6 bytes of file content per second of wall time (request sent -> response read); ${single} rows: the better of 2 runs each way, interleaved.`,
      `Integrity: every 201 (${integrity.checked}, warm-ups included) checked: size and sha256 vs the bytes sent: ${integrity.mismatches} mismatches.`,
      `Memory: the upload service is restarted before each RSS row (absolute peak of a fresh process, not a delta): ` +
        `${sizeLabel(small.size)} ${small.peakMiB} MiB, ${sizeLabel(large.size)} ${large.peakMiB} MiB (growth ${round(large.peakMiB - small.peakMiB, 1)} MiB); ` +
        `gateway peak ${large.batch.watch.others.gateway?.peakRssMiB ?? '-'} MiB during the ${sizeLabel(large.size)} upload.`,
      `CPU: upload ${perGiB(serverUsage)} s/GiB, gateway ${perGiB(othersUsage.gateway)} s/GiB, emulator ${perGiB(othersUsage.emulator)} s/GiB through the service ` +
        `vs ${perGiB(d2.watch.others.emulator, directGiB)} s/GiB fed directly (${count} x ${sizeLabel(each)}). For scale: the direct SDK client ` +
        `(bench process: generating, hashing and uploading) ${sdkClientPerGiB} s/GiB; one SHA-256 pass here ${shaPerGiB} s/GiB.`,
    );
    Object.assign(facts, {
      sizes,
      partBytes: PART_BYTES,
      queueSize: QUEUE_SIZE,
      users: USERS,
      uploadService: { MAX_UPLOAD_BYTES: maxUpload, QUOTA_BYTES: quota, UPLOADS_PER_MINUTE: 100000 },
      singleRunsMBps: singleRuns,
      rss: rss.map((r) => ({ bytes: r.size, beforeMiB: r.beforeMiB, peakMiB: r.peakMiB, method: 'restarted service, 1 MiB warm-up, then max(VmRSS sampled every 50 ms, VmHWM)' })),
      cpuSecondsPerGiB: {
        upload: perGiB(serverUsage),
        gateway: perGiB(othersUsage.gateway),
        emulator: perGiB(othersUsage.emulator),
        emulatorDirect: perGiB(d2.watch.others.emulator, directGiB),
        sdkClientDirect: sdkClientPerGiB,
        sha256OnePass: shaPerGiB,
      },
      integrity,
      goals: GOALS,
    });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    failures.push(`upload benchmark stopped: ${message}`);
    ctx.log(`upload benchmark stopped: ${err instanceof Error ? (err.stack ?? message) : message}`);
  } finally {
    await purgeVersions(aws.s3, bucket, 'users/').catch(() => undefined);
    await purgeVersions(aws.s3, bucket, 'bench-scratch/').catch(() => undefined);
    agent.destroy();
    aws.destroy();
    for (const service of started.reverse()) await service.stop();
  }

  return {
    name: 'upload',
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    facts: {
      ...facts,
      loadGenerator: 'node:http streamed multipart bodies and @aws-sdk/lib-storage in the bench process, on the same machine as the servers and the emulator',
      libStorage: packageVersion('@aws-sdk/lib-storage'),
      emulator: emulator.endpoint,
    },
    scenarios,
    summary,
    failures,
  };
}
