import { Algorithm, hash } from '@node-rs/argon2';
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { type BenchContext, freePort, repoRoot } from './lib/context';
import { type LoadOptions, type LoadResult, measure, runLoad } from './lib/load';
import { Watch, type WatchResult, type WatchTargets } from './lib/watch';
import type { NodeService } from './lib/processes';
import { atLeast, below, type BenchmarkReport, compare, type Goal, packageVersion, type ScenarioResult } from './lib/report';

/** Pre-registered accounts that logins and tokens rotate through, so no per-account effect shows. */
const USERS = 8;
/**
 * Token checks as a throughput ratio: req/s of the authenticated route (`/verified`) over req/s of
 * the same route without authentication (`/bare`), same server, same run, at each concurrency.
 * The added p99 is reported for information (at saturation it is mostly queueing).
 */
const VERIFY_RPS_RATIO_GOAL = 0.9;
/** The liveness goal under a login flood. */
const HEALTH_GOAL_MS = 50;
const FLOOD_CONNECTIONS = 32;

export interface HashCost {
  memoryKiB: number;
  timeCost: number;
  /** argon2 lanes: the auth service always hashes with one. */
  parallelism: number;
  /** HASH_CONCURRENCY: hashes the auth service computes at once. */
  concurrency: number;
}

/** The hashing cost the auth service runs with: its defaults unless the caller's environment overrides them. */
export function hashCostFrom(env: Record<string, string | undefined>): HashCost {
  const int = (name: string, fallback: number) => {
    const n = Number.parseInt(env[name] ?? '', 10);
    return Number.isFinite(n) && n > 0 ? n : fallback;
  };
  return {
    memoryKiB: int('ARGON2_MEMORY_KIB', 19_456),
    timeCost: int('ARGON2_TIME_COST', 2),
    parallelism: 1,
    concurrency: int('HASH_CONCURRENCY', 2),
  };
}

/** Median wall time of one argon2id hash at `cost`, computed here on the same machine. */
async function measureHashMs(cost: HashCost, runs = 5): Promise<{ medianMs: number; samplesMs: number[] }> {
  const options = { algorithm: Algorithm.Argon2id, memoryCost: cost.memoryKiB, timeCost: cost.timeCost, parallelism: cost.parallelism };
  await hash('warm-up password', options);
  const samplesMs: number[] = [];
  for (let i = 0; i < runs; i += 1) {
    const t0 = performance.now();
    await hash(randomBytes(16).toString('base64url'), options);
    samplesMs.push(Number((performance.now() - t0).toFixed(2)));
  }
  const sorted = [...samplesMs].sort((a, b) => a - b);
  return { medianMs: sorted[Math.floor(sorted.length / 2)] as number, samplesMs };
}

async function distinctFreePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

async function postJson(url: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

async function expectStatus(url: string, headers: Record<string, string>, expected: number): Promise<void> {
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(5_000) });
  const text = await res.text();
  if (res.status !== expected) throw new Error(`GET ${url} answered ${res.status} instead of ${expected}: ${text.slice(0, 300)}`);
}

/** Login throughput is bounded by hashing: parallel hashes / time of one hash. Informational. */
function hashBoundGoal(rps: number, boundRps: number): Goal {
  return { description: `info: ${((100 * rps) / boundRps).toFixed(0)}% of hash bound ${boundRps.toFixed(0)}/s`, value: rps, limit: boundRps };
}

/** Round-robin over a list, shared by every connection of a run. */
function rotate<T>(items: T[]): () => T {
  let i = 0;
  return () => items[i++ % items.length] as T;
}

/**
 * Auth benchmark: the real auth service (its own process, real HTTP, the emulator behind it)
 * against a bare Fastify baseline measured in the same run.
 *
 * - GET /bare (baseline) vs GET /verified (baseline + token verification only) vs GET /auth/me
 *   (verification + one DynamoDB GetItem) vs POST /auth/login (argon2id-bound), at each concurrency.
 * - GET /health at concurrency 1 while 32 clients flood /auth/login: liveness must not suffer
 *   from hashing (it runs on the thread pool, bounded by HASH_CONCURRENCY).
 */
export async function authBenchmark(ctx: BenchContext): Promise<BenchmarkReport> {
  const startedAt = new Date();
  const { durationSeconds, warmupSeconds, concurrencies } = ctx.settings;
  const emulator = await ctx.emulator();
  const cost = hashCostFrom(process.env);

  const [authPort, basePort] = (await distinctFreePorts(2)) as [number, number];
  const common = { ...emulator.env, HOST: '127.0.0.1', LOG_LEVEL: 'warn', SHUTDOWN_GRACE_MS: '1000' };
  ctx.log(`starting the auth service on :${authPort} and the baseline on :${basePort}`);
  const [auth, base] = await Promise.all([
    ctx.registry.startNode({
      name: 'auth',
      script: join(repoRoot, 'services/auth/dist/server.js'),
      cwd: repoRoot,
      port: authPort,
      readyPath: '/ready',
      env: {
        ...common,
        PORT: String(authPort),
        COOKIE_SECURE: 'false',
        REGISTER_RATE_LIMIT_PER_MINUTE: '100000',
        REGISTER_RATE_LIMIT_PER_HOUR: '100000',
        LOGIN_MAX_FAILURES_PER_ADDRESS: '100000',
        // Attempts are counted while they are checked (AU-05): the bench's few accounts see many logins at once.
        LOGIN_MAX_FAILURES_PER_ACCOUNT: '100000',
        // Likewise the hashes in flight per account and per address (every bench client is 127.0.0.1).
        HASH_CONCURRENCY_PER_ACCOUNT: '100000',
        HASH_CONCURRENCY_PER_ADDRESS: '100000',
        ARGON2_MEMORY_KIB: String(cost.memoryKiB),
        ARGON2_TIME_COST: String(cost.timeCost),
        HASH_CONCURRENCY: String(cost.concurrency),
      },
    }),
    ctx.registry.startNode({
      name: 'baseline',
      script: join(__dirname, 'baseline-server.js'),
      cwd: repoRoot,
      port: basePort,
      readyPath: '/bare',
      env: { ...common, PORT: String(basePort) },
    }),
  ]);

  ctx.log(`registering ${USERS} users and signing them in`);
  const users = Array.from({ length: USERS }, (_, i) => ({
    username: `bench-${i}-${randomBytes(3).toString('hex')}`,
    password: `Bench ${randomBytes(12).toString('base64url')} pass`,
  }));
  const tokens: string[] = [];
  for (const user of users) {
    const reg = await postJson(`${auth.url}/auth/register`, user);
    if (reg.status !== 201) throw new Error(`register answered ${reg.status}: ${JSON.stringify(reg.json)}`);
    const login = await postJson(`${auth.url}/auth/login`, user);
    if (login.status !== 200 || typeof login.json.accessToken !== 'string') {
      throw new Error(`login answered ${login.status}: ${JSON.stringify(login.json)}`);
    }
    tokens.push(login.json.accessToken);
  }
  const bearer = { authorization: `Bearer ${tokens[0]}` };
  await expectStatus(`${base.url}/verified`, bearer, 200);
  await expectStatus(`${base.url}/verified`, {}, 401);
  await expectStatus(`${auth.url}/auth/me`, bearer, 200);

  ctx.log(`timing one argon2id hash (m=${cost.memoryKiB} KiB, t=${cost.timeCost}, p=${cost.parallelism})`);
  const hashTime = await measureHashMs(cost);
  const hashBoundRps = Math.min(cost.concurrency, availableParallelism()) / (hashTime.medianMs / 1000);

  const nextToken = rotate(tokens.map((t) => ({ authorization: `Bearer ${t}` })));
  const nextUser = rotate(users.map((u) => JSON.stringify(u)));
  const json = { 'content-type': 'application/json' };
  const routes = {
    // The same requests as /verified (the rotating bearer header included, which the public route
    // ignores), so the two differ only by the server's token check, not by the load generator's work.
    bare: (c: number): LoadOptions => ({ url: base.url, path: '/bare', connections: c, durationSeconds, vary: () => ({ headers: nextToken() }) }),
    verified: (c: number): LoadOptions => ({
      url: base.url,
      path: '/verified',
      connections: c,
      durationSeconds,
      vary: () => ({ headers: nextToken() }),
    }),
    me: (c: number): LoadOptions => ({ url: auth.url, path: '/auth/me', connections: c, durationSeconds, vary: () => ({ headers: nextToken() }) }),
    login: (c: number): LoadOptions => ({
      url: auth.url,
      method: 'POST',
      path: '/auth/login',
      connections: c,
      durationSeconds,
      headers: json,
      vary: () => ({ body: nextUser() }),
    }),
  };

  const scenarios: ScenarioResult[] = [];
  const failures: string[] = [];
  const record = (
    scenario: string,
    target: string,
    server: NodeService,
    { load, watch }: { load: LoadResult; watch: WatchResult | undefined },
    extra: Pick<ScenarioResult, 'baseline' | 'goal' | 'note'> = {},
  ): ScenarioResult => {
    const usage = watch?.server ?? null;
    const result: ScenarioResult = {
      scenario,
      target,
      connections: load.connections,
      load,
      server: usage,
      serverCpuMsPerRequest: usage && load.requests > 0 ? Number(((usage.cpuSeconds * 1000) / load.requests).toFixed(3)) : null,
      ...(watch?.eventLoopDelayMs ? { eventLoopDelayMs: watch.eventLoopDelayMs } : {}),
      ...(watch ? { others: watch.others } : {}),
      ...extra,
    };
    scenarios.push(result);
    // A 503 is the service shedding load or reporting an emulator hiccup (a valid answer under
    // overload); anything else unexpected in more than 1% of requests means the run is not valid.
    const attempted = load.requests + load.non2xx + load.errors;
    const unavailable = load.statusCodes['503'] ?? 0;
    if (load.requests === 0 || load.non2xx - unavailable + load.errors > 0.01 * attempted || unavailable > 0.25 * attempted) {
      failures.push(`${scenario} c=${load.connections}: ${load.requests} ok, ${load.non2xx} non-2xx ${JSON.stringify(load.statusCodes)}, ${load.errors} errors`);
      ctx.log(`${scenario}: too many failed requests; last output of ${server.name}:\n${server.output().split('\n').slice(-10).join('\n')}`);
    }
    return result;
  };

  const targets = (server: NodeService): WatchTargets => ({
    server: { name: server.name, pid: server.pid, ...(server === auth ? { metricsUrl: `${auth.url}/metrics` } : {}) },
    others: { emulator: emulator.pid, loadgen: process.pid },
  });
  /** Warm-up, then a measured run while the processes are watched. */
  const run = async (server: NodeService, opts: LoadOptions) => {
    const measured = await measure(opts, warmupSeconds, targets(server));
    server.assertRunning();
    return measured;
  };

  const bareByConcurrency = new Map<number, LoadResult>();
  for (const c of concurrencies) {
    ctx.log(`concurrency ${c}: /bare, /verified, /auth/me, /auth/login (${warmupSeconds}+${durationSeconds} s each)`);
    const bare = await run(base, routes.bare(c));
    bareByConcurrency.set(c, bare.load);
    record('bare (baseline)', 'GET /bare on the baseline', base, bare);

    const verified = await run(base, routes.verified(c));
    const vCmp = compare(verified.load, bare.load, 'bare');
    record('verified (token only)', 'GET /verified on the baseline', base, verified, {
      baseline: vCmp,
      goal: atLeast(`req/s vs /bare >= ${VERIFY_RPS_RATIO_GOAL}`, vCmp.rpsRatio, VERIFY_RPS_RATIO_GOAL),
      note: `+p99 ${vCmp.addedP99Ms} ms (information)`,
    });

    const me = await run(auth, routes.me(c));
    const mCmp = compare(me.load, bare.load, 'bare');
    record('auth/me', 'GET /auth/me on auth', auth, me, {
      baseline: mCmp,
      goal: { description: 'info: +p99 incl. GetItem', value: mCmp.addedP99Ms, unit: 'ms' },
      note: 'token verification plus one DynamoDB GetItem against the emulator',
    });

    const login = await run(auth, routes.login(c));
    const bound = (Math.min(cost.concurrency, availableParallelism(), c) * 1000) / hashTime.medianMs;
    record('auth/login', 'POST /auth/login on auth', auth, login, {
      baseline: compare(login.load, bare.load, 'bare'),
      goal: hashBoundGoal(login.load.rps, bound),
      note: `argon2id m=${cost.memoryKiB} KiB t=${cost.timeCost} p=${cost.parallelism}, HASH_CONCURRENCY=${cost.concurrency}, one hash ${hashTime.medianMs} ms`,
    });
  }

  ctx.log(`health at concurrency 1, idle and then while ${FLOOD_CONNECTIONS} clients flood /auth/login`);
  const healthRoute: LoadOptions = { url: auth.url, path: '/health', connections: 1, durationSeconds };
  const idle = await run(auth, healthRoute);
  record('health (idle)', 'GET /health on auth', auth, idle, { baseline: compare(idle.load, bareByConcurrency.get(1) ?? idle.load, 'bare') });

  const floodWarmup = Math.max(warmupSeconds, 1);
  const flood = runLoad({ ...routes.login(FLOOD_CONNECTIONS), durationSeconds: floodWarmup + durationSeconds + 1 });
  await new Promise((r) => setTimeout(r, floodWarmup * 1000));
  const watch = await Watch.start(targets(auth));
  const health = await runLoad(healthRoute);
  const healthWatch = await watch.stop();
  const floodLoad = await flood;
  auth.assertRunning();
  const during = record('health during login flood', `GET /health on auth, ${FLOOD_CONNECTIONS} clients on /auth/login`, auth, { load: health, watch: healthWatch }, {
    baseline: compare(health, idle.load, 'health (idle)'),
    goal: below(`p99 < ${HEALTH_GOAL_MS} ms`, health.latencyMs.p99, HEALTH_GOAL_MS),
  });
  record('login flood (background)', 'POST /auth/login on auth', auth, { load: floodLoad, watch: undefined }, {
    goal: hashBoundGoal(floodLoad.rps, hashBoundRps),
    note: 'the flood around the health measurement, including its warm-up; CPU/RSS are on the health row',
  });

  const summary = [
    `Hash cost (login): argon2id m=${cost.memoryKiB} KiB, t=${cost.timeCost}, p=${cost.parallelism}; one hash ${hashTime.medianMs} ms here ` +
      `(median of ${hashTime.samplesMs.length}); HASH_CONCURRENCY=${cost.concurrency} -> hashing allows ~${hashBoundRps.toFixed(0)} logins/s on this machine.`,
  ];
  const at = (name: string, c: number) => scenarios.find((r) => r.scenario === name && r.connections === c);
  for (const c of concurrencies) {
    const b = at('bare (baseline)', c)?.serverCpuMsPerRequest;
    const v = at('verified (token only)', c)?.serverCpuMsPerRequest;
    const login = at('auth/login', c);
    const ratio = at('verified (token only)', c)?.baseline?.rpsRatio;
    if (ratio !== undefined) summary.push(`c=${c}: token checks: authenticated / bare route req/s = ${ratio} (goal >= ${VERIFY_RPS_RATIO_GOAL})`);
    if (b != null && v != null) {
      summary.push(
        `c=${c}: token verification costs ${(v - b).toFixed(3)} ms of server CPU per request; ` +
          `login ${login?.load.rps ?? '-'}/s with the emulator at ${login?.others?.emulator?.cpuCores ?? '-'} cores and auth at ${login?.server?.cpuCores ?? '-'} cores.`,
      );
    }
  }
  if (during.eventLoopDelayMs) {
    const el = during.eventLoopDelayMs;
    summary.push(
      `During the flood: /health max ${during.load.latencyMs.max} ms; auth event-loop delay p50 ${el.p50} ms, p99 ${el.p99} ms, max ${el.max} ms ` +
        '(prom-client, 10 ms resolution). One client sees one slow request per stall, so /health p99 understates stalls.',
    );
  }

  return {
    name: 'auth',
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    facts: {
      hashCost: {
        algorithm: 'argon2id',
        memoryKiB: cost.memoryKiB,
        timeCost: cost.timeCost,
        parallelism: cost.parallelism,
        hashConcurrency: cost.concurrency,
        singleHashMs: hashTime.medianMs,
        singleHashSamplesMs: hashTime.samplesMs,
        loginBoundRps: Number(hashBoundRps.toFixed(1)),
      },
      goals: {
        verifyRpsRatio: `req/s(GET /verified) / req/s(GET /bare) >= ${VERIFY_RPS_RATIO_GOAL} at each concurrency (same server, same run)`,
        healthP99UnderLoginFloodMs: `p99(GET /health) < ${HEALTH_GOAL_MS} ms while ${FLOOD_CONNECTIONS} clients flood /auth/login`,
      },
      users: USERS,
      settings: ctx.settings,
      loadGenerator: `autocannon ${packageVersion('autocannon')} in the bench process, on the same machine as the servers and the emulator`,
      fastify: packageVersion('fastify'),
      emulator: emulator.endpoint,
    },
    scenarios,
    summary,
    failures,
  };
}
