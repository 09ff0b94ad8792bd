import { loadConfig } from '@scs/common';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { png, txt } from './client';
import { Harness } from './harness';
import { type Scenario, type ScenarioReport, verdictFailures } from './scenario';
import { emulatorOutageScenario } from './scenarios/r1-emulator-outage';
import { floodsScenario } from './scenarios/r4-floods';
import { loadScenario } from './scenarios/r5-load';
import { backupScenario } from './scenarios/r6-r7-backup';
import { sigtermScenario } from './scenarios/r8-sigterm';
import { killedUploadScenario } from './scenarios/r16-killed-upload';
import { resumableDropsScenario } from './scenarios/r17-resumable-drops';
import { ResilienceSettings, SCENARIO_IDS } from './settings';

const MiB = 1024 * 1024;
/** At most this many failure lines per scenario are printed (all are in the output folder's ledger and log). */
const MAX_FAILURE_LINES = 25;

const SCENARIOS: Scenario[] = [loadScenario, floodsScenario, emulatorOutageScenario, backupScenario, sigtermScenario, killedUploadScenario, resumableDropsScenario];

const out = (line: string) => process.stdout.write(`${line}\n`);
const log = (line: string) => process.stderr.write(`resilience: ${line}\n`);
const warnLoudly = (line: string) => process.stderr.write(`\n${'!'.repeat(78)}\n!!! ${line}\n${'!'.repeat(78)}\n\n`);

/** The settings of the stack's processes that the suite needs. */
function stackEnv(s: ResilienceSettings): Record<string, string> {
  return {
    // The large files must fit; files over the limit cost less to send.
    MAX_UPLOAD_BYTES: process.env.MAX_UPLOAD_BYTES ?? String(s.RESILIENCE_LARGE_BYTES + MiB),
    // The suite's users upload for minutes: the quota is not what is tested here.
    QUOTA_BYTES: process.env.QUOTA_BYTES ?? String(1024 * 1024 * MiB),
    // Every client is its own user, all from one address.
    REGISTER_RATE_LIMIT_PER_MINUTE: process.env.REGISTER_RATE_LIMIT_PER_MINUTE ?? '100000',
    REGISTER_RATE_LIMIT_PER_HOUR: process.env.REGISTER_RATE_LIMIT_PER_HOUR ?? '100000',
    HASH_CONCURRENCY_PER_ADDRESS: process.env.HASH_CONCURRENCY_PER_ADDRESS ?? '100000',
    // In-flight uploads get the services' shutdown grace (this minus 2 s) to finish (R8).
    STACK_STOP_GRACE_MS: process.env.STACK_STOP_GRACE_MS ?? '20000',
    // Events a killed or cut-off backup-sync had received come back after this (R6/R7), within the settle window.
    BACKUP_VISIBILITY_SECONDS: process.env.BACKUP_VISIBILITY_SECONDS ?? '20',
    // The reservations of uploads a killed upload service held run out this soon after it died (R16).
    RESERVATION_LEASE_SECONDS: process.env.RESERVATION_LEASE_SECONDS ?? '10',
  };
}

/** One user uploads one file of each accepted kind, checked like any scenario; the memory baseline is taken after it. */
async function warmUp(h: Harness): Promise<ScenarioReport | undefined> {
  const account = await h.signUp('warmup');
  const s = h.settings;
  const files = [txt('0 B', 0), txt('1 B', 1), png('medium', s.RESILIENCE_MEDIUM_BYTES, true), png('large', s.RESILIENCE_LARGE_BYTES)];
  for (const spec of files) await h.api.uploadRecorded(h.ledger, 'warm-up', account, spec);
  const entries = h.ledger.of('warm-up');
  const failures = entries.filter((e) => e.status !== 201).map((e) => `${e.label}: ${e.status} ${e.code ?? e.error ?? ''}`);
  const verdict = await h.verify(entries);
  failures.push(...verdictFailures(verdict));
  await h.takeBaseline();
  return failures.length ? { id: 'warm-up', line: 'warm-up: the stack does not store files correctly', failures } : undefined;
}

async function main(harnessRef: { current?: Harness }): Promise<number> {
  const settings = loadConfig(ResilienceSettings, process.env);
  const only = settings.RESILIENCE_ONLY.split(',').map((id) => id.trim().toUpperCase()).filter(Boolean);
  const unknown = only.filter((id) => !(SCENARIO_IDS as readonly string[]).includes(id));
  if (unknown.length) throw new Error(`RESILIENCE_ONLY names unknown scenarios: ${unknown.join(', ')} (known: ${SCENARIO_IDS.join(', ')})`);
  const selected = SCENARIOS.filter((sc) => only.length === 0 || only.includes(sc.id));
  const outputDir = settings.RESILIENCE_OUTPUT_DIR
    ? (mkdirSync(settings.RESILIENCE_OUTPUT_DIR, { recursive: true }), settings.RESILIENCE_OUTPUT_DIR)
    : mkdtempSync(join(tmpdir(), 'scs-resilience-'));
  const budgetEnds = performance.now() + settings.RESILIENCE_BUDGET_SECONDS * 1000;
  log(`ledger, stack log and results in ${outputDir}`);

  const started = performance.now();
  const h = await Harness.start(settings, outputDir, stackEnv(settings));
  harnessRef.current = h;
  const { mover, backup } = h.features;
  log(
    `stack up in ${Math.round((performance.now() - started) / 1000)} s; sensitive mover ${mover ? 'running' : 'ABSENT'}, ` +
      `backups ${backup ? 'made' : 'NOT MADE (backup-sync has no backup API yet)'}`,
  );

  const reports: ScenarioReport[] = [];
  const warm = await warmUp(h);
  if (warm) reports.push(warm);
  for (const scenario of warm ? [] : selected) {
    if (performance.now() > budgetEnds) {
      reports.push({ id: scenario.id, line: `${scenario.id} ${scenario.title}: NOT RUN (RESILIENCE_BUDGET_SECONDS spent)`, failures: ['not run: the time budget was spent'] });
      continue;
    }
    log(`running ${scenario.id} ${scenario.title}`);
    let report: ScenarioReport;
    try {
      report = await scenario.run(h);
    } catch (err) {
      report = { id: scenario.id, line: `${scenario.id} ${scenario.title}: ERROR`, failures: [(err as Error).stack ?? String(err)] };
    }
    reports.push(report);
    out(report.line);
    for (const f of report.failures.slice(0, MAX_FAILURE_LINES)) out(`  FAIL ${f}`);
    if (report.failures.length > MAX_FAILURE_LINES) out(`  ... and ${report.failures.length - MAX_FAILURE_LINES} more`);
  }
  await h.stop();

  const failed = reports.filter((r) => r.failures.length > 0);
  const skipped = reports.filter((r) => r.skipped);
  for (const r of skipped) warnLoudly(`${r.id} SKIPPED: ${r.skipped}`);
  if (!mover) warnLoudly('NOT CHECKED: sensitive files in the vault (the stack runs no sensitive mover)');
  if (!backup) warnLoudly('NOT CHECKED: backups (the stack\'s backup-sync makes none)');
  if (warm) {
    out(warm.line);
    for (const f of warm.failures.slice(0, MAX_FAILURE_LINES)) out(`  FAIL ${f}`);
  }
  out(`resilience: ${reports.length - failed.length - skipped.length} passed, ${failed.length} failed, ${skipped.length} skipped in ${Math.round((performance.now() - started) / 1000)} s (details in ${outputDir})`);
  return failed.length ? 1 : 0;
}

const harnessRef: { current?: Harness } = {};
let finishing = false;
const finish = async (code: number) => {
  if (finishing) return;
  finishing = true;
  await harnessRef.current?.stop().catch(() => undefined);
  process.exit(code);
};
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    log(`${signal}: stopping the stack`);
    void finish(130);
  });
}
process.on('exit', () => harnessRef.current?.stack.killAll());

main(harnessRef).then(
  (code) => finish(code),
  (err: unknown) => {
    process.stderr.write(`\nresilience suite failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    void finish(1);
  },
);
