import { png, txt } from '../client';
import type { Harness } from '../harness';
import type { LedgerEntry } from '../ledger';
import { mapLimit, pipelineNote, range, type Scenario, uploadWithRetries, verdictFailures, waitFor } from '../scenario';

const KiB = 1024;
/** Phase A resets every connection of the services to the emulator once it carried this much: S3 dies mid-part. */
const RESET_AFTER_BYTES = 256 * KiB;
/** Bytes that must reach the emulator after phase A before phase B: uploads are streaming again. */
const STREAMING_BYTES = 4 * 1024 * 1024;
/** How long after the emulator is back every client must have stored a file again. */
const RECOVERY_TIMEOUT_MS = 90_000;

/**
 * R1 the emulator dies mid-upload. RESILIENCE_FAULT_CLIENTS clients upload multipart-sized and
 * small files, retrying failures as a careful client does. While uploads are in flight, phase A
 * resets the services' connections to the emulator mid-stream (the fault proxy's reset after N
 * bytes), phase B makes it unreachable for RESILIENCE_OUTAGE_SECONDS (stopped: open connections
 * reset, new ones refused), then it comes back. Every failed attempt must be a 503 with
 * Retry-After that left nothing; the same processes (no restart) must serve the clients' retries,
 * and every client must store files again.
 */
export const emulatorOutageScenario: Scenario = {
  id: 'R1',
  title: 'emulator outage',
  async run(h: Harness) {
    const s = h.settings;
    const accounts = await mapLimit(range(s.RESILIENCE_FAULT_CLIENTS), 8, (i) => h.signUp(`r1-${i}`));
    const pidsBefore = Object.fromEntries(h.stack.childNames.map((name) => [name, h.stack.child(name)?.pid]));
    const specs = [png('medium+1', s.RESILIENCE_MEDIUM_BYTES + 1), png('medium-1', s.RESILIENCE_MEDIUM_BYTES - 1), txt('1 B', 1)];
    let inFlight = 0;
    let stop = false;
    let stoppedAt = Number.POSITIVE_INFINITY;
    let backAt = Number.POSITIVE_INFINITY;
    const storedAfterBack = new Set<number>();
    const gaveUp: LedgerEntry[] = [];

    const clients = accounts.map(async (account, i) => {
      for (let n = i; !stop; n += 1) {
        inFlight += 1;
        const giveUp = () => performance.now() > backAt + RECOVERY_TIMEOUT_MS || (stop && performance.now() > stoppedAt + RECOVERY_TIMEOUT_MS);
        const attempts = await uploadWithRetries(h, 'R1', account, specs[n % specs.length] as (typeof specs)[number], giveUp).finally(
          () => (inFlight -= 1),
        );
        const last = attempts[attempts.length - 1] as LedgerEntry;
        if (last.status !== 201) gaveUp.push(last);
        else if (performance.now() > backAt) storedAfterBack.add(i);
      }
    });

    const events: string[] = [];
    try {
      await waitFor('uploads in flight', () => inFlight >= Math.ceil(accounts.length / 2) && h.proxy.stats.bytes > 0, 30_000);
      // Phase A: S3 dies mid-stream.
      h.proxy.set({ resetAfterBytes: RESET_AFTER_BYTES });
      const resetsBefore = h.proxy.stats.resets;
      await waitFor('connections reset mid-stream', () => h.proxy.stats.resets - resetsBefore >= 3, 30_000);
      await new Promise((resolve) => setTimeout(resolve, (s.RESILIENCE_OUTAGE_SECONDS * 1000) / 2));
      h.proxy.clear();
      events.push(`${h.proxy.stats.resets - resetsBefore} connections reset mid-stream`);
      // Files streaming to S3 again (not clients waiting to retry): the outage must catch uploads mid-stream.
      const streamed = h.proxy.stats.bytes;
      await waitFor('uploads streaming to S3 again', () => h.proxy.stats.bytes - streamed > STREAMING_BYTES, 60_000);
      // Phase B: the emulator is gone for everyone, then back on the same address.
      await Promise.all([h.proxy.stop(), h.backupProxy.stop()]);
      await new Promise((resolve) => setTimeout(resolve, s.RESILIENCE_OUTAGE_SECONDS * 1000));
      await Promise.all([h.proxy.start(), h.backupProxy.start()]);
      backAt = performance.now();
      await waitFor(
        'every client to store a file after the emulator came back',
        () => storedAfterBack.size === accounts.length || gaveUp.length > 0,
        RECOVERY_TIMEOUT_MS + 10_000,
        200,
      );
    } finally {
      stop = true;
      stoppedAt = performance.now();
      h.proxy.clear();
      await Promise.all([h.proxy.start(), h.backupProxy.start()]);
      await Promise.all(clients);
    }

    const entries = h.ledger.of('R1');
    const failed = entries.filter((e) => e.status !== 201);
    const failures: string[] = [];
    for (const e of failed) {
      if (e.status !== 503) failures.push(`#${e.request} ${e.label} attempt ${e.attempt}: ${e.status || 'no answer'} ${e.code ?? ''} ${e.error ?? ''}, not 503`.trim());
      else if (!e.retryAfter) failures.push(`#${e.request} ${e.label}: 503 without Retry-After`);
    }
    for (const e of gaveUp) failures.push(`#${e.request} ${e.label}: the client's retries did not succeed within ${RECOVERY_TIMEOUT_MS / 1000} s of the emulator's return`);
    if (failed.length === 0) failures.push('the outage hit no upload: the scenario proved nothing');
    const restarted = Object.entries(pidsBefore).filter(([name, pid]) => h.stack.child(name)?.pid !== pid);
    for (const [name] of restarted) failures.push(`${name} was restarted: services must recover on their own`);
    const ready = await Promise.all(
      ['upload', 'auth'].map(async (name) => {
        const res = await fetch(`http://127.0.0.1:${h.servicePorts[name]}/ready`, { signal: AbortSignal.timeout(10_000) });
        await res.arrayBuffer();
        return res.status === 200 ? '' : `${name} /ready answered ${res.status} after the emulator came back`;
      }),
    );
    failures.push(...ready.filter(Boolean));

    const verdict = await h.verify(entries);
    failures.push(...verdictFailures(verdict));
    const logical = entries.filter((e) => e.status === 201).length + gaveUp.length;
    const line =
      `R1 emulator outage: ${events.join(', ')}, then ${s.RESILIENCE_OUTAGE_SECONDS} s unreachable; ${logical} uploads by ${accounts.length} clients ` +
      `in ${entries.length} attempts: ${failed.length} failed (${failed.filter((e) => e.status === 503).length} x 503), ` +
      `${logical - gaveUp.length}/${logical} stored after retries, ${verdict.lost.length} lost, ${verdict.phantom.length} phantom, ` +
      `${restarted.length ? 'RESTARTED' : 'same processes throughout'}${pipelineNote(h)}`;
    return { id: 'R1', line, failures };
  },
};
