import { runSmoke, SmokeError } from '../pipeline/smoke';

/**
 * `node scripts/dist/cli/smoke.js <base URL>` (or SMOKE_URL): the deploy smoke test
 * (scripts/src/pipeline/smoke.ts) through the public URL. SMOKE_WAIT_SECONDS (default 0) retries
 * the first request while the deployment comes up. Exit 0 when every step passed, 1 otherwise.
 */
async function main(): Promise<number> {
  const baseUrl = process.argv[2] ?? process.env.SMOKE_URL;
  if (!baseUrl || !/^https?:\/\//.test(baseUrl)) {
    console.error('usage: smoke <base URL>   (e.g. https://files.example.com, http://127.0.0.1:8080)');
    return 2;
  }
  console.log(`smoke: ${baseUrl}`);
  try {
    await runSmoke({ baseUrl, log: (line) => console.log(line), waitForReadyMs: Number(process.env.SMOKE_WAIT_SECONDS ?? 0) * 1000 });
    console.log('smoke: passed');
    return 0;
  } catch (err) {
    console.error(`smoke: failed: ${err instanceof SmokeError ? err.message : (err as Error).stack}`);
    return 1;
  }
}

void main().then((code) => (process.exitCode = code));
