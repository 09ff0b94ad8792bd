import { createAwsClients, loadConfig } from '@scs/common';
import { freePort, startEmulator } from '@scs/local-stack/emulator';
import { provision, ResourceNames } from '@scs/local-stack/provision';
import { createWriteStream, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ProcessRegistry } from './processes';

/** The repository root (bench/dist/lib -> ../../..). */
export const repoRoot = resolve(__dirname, '../../..');

export interface BenchSettings {
  /** Measured seconds per scenario and concurrency. */
  durationSeconds: number;
  /** Discarded seconds before each measurement. */
  warmupSeconds: number;
  concurrencies: number[];
  /** Run the Node servers of the upload benchmark under `--cpu-prof` and summarise the profiles. */
  profile: boolean;
}

/** What every benchmark receives from the entry point. */
export interface BenchContext {
  settings: BenchSettings;
  /** Register every process started, so the entry point stops it on exit, failure or signal. */
  registry: ProcessRegistry;
  /** The emulator, started and provisioned once per run (like `npm start` and the tests do). */
  emulator(): Promise<Emulator>;
  log(message: string): void;
}

export interface Emulator {
  endpoint: string;
  pid: number | undefined;
  /** What a service process needs to reach it through the SDK's standard configuration. */
  env: Record<string, string>;
}

/** SDK settings that point at the local emulator with its dummy credentials. */
export function emulatorEnv(endpoint: string): Record<string, string> {
  return {
    AWS_ENDPOINT_URL: endpoint,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
  };
}

/** Where the emulator's own output (its request log and any error it raised) is kept during a run. */
export const EMULATOR_LOG = join(repoRoot, 'bench/results/emulator.log');

/** Starts moto on a free loopback port, registers it for clean-up, and provisions it. */
export async function startProvisionedEmulator(registry: ProcessRegistry, log: (m: string) => void): Promise<Emulator> {
  const running = await startEmulator(repoRoot, await freePort());
  registry.add({ name: 'emulator', child: running.child, stop: () => running.stop() });
  mkdirSync(join(repoRoot, 'bench/results'), { recursive: true });
  const file = createWriteStream(EMULATOR_LOG);
  running.child.stderr?.on('data', (d: Buffer) => file.write(d));
  running.child.once('exit', () => file.end());
  const env = emulatorEnv(running.endpoint);
  // The SDK's default credential chain reads these; this process only ever talks to the emulator.
  Object.assign(process.env, env);
  const aws = createAwsClients({ AWS_REGION: env.AWS_REGION as string, AWS_ENDPOINT_URL: running.endpoint, AWS_MAX_ATTEMPTS: 3, AWS_REQUEST_TIMEOUT_MS: 10_000 });
  try {
    await provision(aws, loadConfig(ResourceNames, {}), { info: (m) => log(`provision: ${m}`) });
  } finally {
    aws.destroy();
  }
  return { endpoint: running.endpoint, pid: running.child.pid, env };
}

export { freePort };
