import type { ExitInfo } from '@scs/local-stack/stack/child';
import { png, txt } from '../client';
import type { Harness } from '../harness';
import type { LedgerEntry } from '../ledger';
import { mapLimit, pipelineNote, range, type Scenario, verdictFailures, waitFor } from '../scenario';

/** New requests are sent this often while the upload service shuts down. */
const PROBE_INTERVAL_MS = 100;

/** True once a service's /health no longer answers 200 (503 while closing, or refused). */
async function shuttingDown(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2_000) });
    await res.arrayBuffer();
    return res.status !== 200;
  } catch {
    return true;
  }
}

/**
 * R8 SIGTERM to the upload service during RESILIENCE_LONG_UPLOADS uploads behind the gateway.
 * The uploads are long because the upload service's way to the emulator is capped at
 * RESILIENCE_LONG_UPLOAD_BANDWIDTH per connection (the fault proxy). Once all are in flight, the
 * service gets SIGTERM; until it has exited, new requests (an upload and a listing) go through
 * the gateway every 100 ms. In-flight uploads must complete (201) or fail cleanly (nothing left),
 * every new request must get 503, and the service must exit with code 0. It is then started
 * again and must store a file.
 */
export const sigtermScenario: Scenario = {
  id: 'R8',
  title: 'SIGTERM during uploads',
  async run(h: Harness) {
    const s = h.settings;
    const n = s.RESILIENCE_LONG_UPLOADS;
    const accounts = await mapLimit(range(n), 8, (i) => h.signUp(`r8-${i}`));
    const prober = await h.signUp('r8-new');
    const failures: string[] = [];

    h.proxy.set({ bytesPerSecond: s.RESILIENCE_LONG_UPLOAD_BANDWIDTH });
    const bytesBefore = h.proxy.stats.bytes;
    let answered = 0;
    const inFlight = accounts.map((account, i) =>
      h.api.uploadRecorded(h.ledger, 'R8', account, png('long', s.RESILIENCE_LONG_UPLOAD_BYTES, i % 4 === 0)).finally(() => (answered += 1)),
    );
    const probes: LedgerEntry[] = [];
    const listings: number[] = [];
    let exit: ExitInfo;
    try {
      // All bodies on their way, none answered: the service is working on every one of them.
      await waitFor('the long uploads to be in flight', () => h.proxy.stats.bytes - bytesBefore > n * 64 * 1024 || answered > 0, 60_000);
      if (answered > 0) failures.push(`${answered} long upload(s) were answered before SIGTERM: raise RESILIENCE_LONG_UPLOAD_BYTES or lower the bandwidth`);
      const exited = h.stack.stopChild('upload', 'SIGTERM');
      let down = false;
      void exited.then(() => (down = true));
      // The signal is handled a moment later: from when the service's own /health stops answering 200, it is shutting down.
      await waitFor('the upload service to begin shutting down', () => shuttingDown(h.servicePorts.upload as number), 30_000, 10);
      // New requests while it shuts down: each must be refused with 503, never reach a closing service.
      while (!down) {
        const [upload, list] = await Promise.all([
          h.api.uploadRecorded(h.ledger, 'R8', prober, txt('new during shutdown', 1)),
          h.api.json('GET', '/api/files', { token: prober.token }).then((r) => r.status),
        ]);
        probes.push(upload);
        listings.push(list);
        await new Promise((resolve) => setTimeout(resolve, PROBE_INTERVAL_MS));
      }
      exit = await exited;
    } finally {
      h.proxy.clear();
    }
    const longs = await Promise.all(inFlight);

    if (exit.code !== 0 || exit.signal) failures.push(`the upload service exited with ${exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`}, not code 0`);
    for (const e of probes) if (e.status !== 503) failures.push(`#${e.request} new upload during shutdown: ${e.status || 'no answer'} ${e.code ?? e.error ?? ''}, not 503`.trim());
    for (const status of listings) if (status !== 503) failures.push(`new listing during shutdown: ${status}, not 503`);
    if (probes.length === 0) failures.push('no new request was sent during the shutdown');
    const completed = longs.filter((e) => e.status === 201).length;
    const cleanFailures = longs.filter((e) => e.status !== 201);
    for (const e of cleanFailures) {
      if (!(e.status >= 500 && e.status <= 504)) failures.push(`#${e.request} in-flight upload: ${e.status || 'no answer'} ${e.code ?? e.error ?? ''}: neither stored nor refused cleanly`.trim());
    }

    // Back up: the same command and environment, and the service stores files again.
    await h.stack.restartChild('upload');
    const after = await h.api.uploadRecorded(h.ledger, 'R8', prober, png('after restart', 1024));
    if (after.status !== 201) failures.push(`the first upload after the restart answered ${after.status} ${after.code ?? after.error ?? ''}`.trim());

    const verdict = await h.verify(h.ledger.of('R8'));
    failures.push(...verdictFailures(verdict));
    const probeStatuses = [...probes.map((e) => e.status), ...listings];
    const line =
      `R8 SIGTERM upload service: ${n} uploads in flight: ${completed} completed, ${cleanFailures.length} failed cleanly; ` +
      `${probeStatuses.length} new requests during shutdown: ${probeStatuses.filter((st) => st === 503).length} x 503; ` +
      `exit ${exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`}; restarted, next upload ${after.status}; ` +
      `${verdict.lost.length} lost, ${verdict.phantom.length} phantom${pipelineNote(h)}`;
    return { id: 'R8', line, failures };
  },
};
