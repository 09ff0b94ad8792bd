import type { Harness } from '../harness';
import { percentile, statusSummary } from '../ledger';
import { deck, loadMix } from '../mix';
import { mapLimit, pipelineNote, range, type Scenario, verdictFailures } from '../scenario';

/**
 * R5 load: RESILIENCE_CLIENTS clients, each its own user, upload the mix back to back for
 * RESILIENCE_LOAD_SECONDS through the gateway while the emulator is healthy (behind
 * RESILIENCE_AWS_LATENCY_MS of one-way delay, as S3 is not next door). Every answer must be
 * the one expected (201, or the refusal's 4xx): not one 5xx, not one dropped connection. Then the
 * ledger is checked against the stores.
 */
export const loadScenario: Scenario = {
  id: 'R5',
  title: 'load',
  async run(h: Harness) {
    const s = h.settings;
    const accounts = await mapLimit(range(s.RESILIENCE_CLIENTS), 8, (i) => h.signUp(`r5-${i}`));
    const mix = loadMix(s, h.maxUploadBytes);
    const started = performance.now();
    const until = started + s.RESILIENCE_LOAD_SECONDS * 1000;
    h.proxy.set({ latencyMs: s.RESILIENCE_AWS_LATENCY_MS });
    try {
      await Promise.all(
        accounts.map(async (account, i) => {
          const next = deck(mix, i + 1);
          while (performance.now() < until) await h.api.uploadRecorded(h.ledger, 'R5', account, next());
        }),
      );
    } finally {
      h.proxy.clear();
    }
    const loadSeconds = (performance.now() - started) / 1000;
    const entries = h.ledger.of('R5');
    const failures: string[] = [];
    for (const e of entries) {
      if (e.status !== e.expect) {
        failures.push(`#${e.request} ${e.label} (${e.size} B${e.sensitive ? ', sensitive' : ''}): expected ${e.expect}, got ${e.status || 'no answer'} ${e.code ?? ''} ${e.error ?? ''}`.trim());
      }
    }
    const verdict = await h.verify(entries);
    failures.push(...verdictFailures(verdict));
    const serverErrors = entries.filter((e) => e.status >= 500 || (e.status === 0 && e.expect !== 0)).length;
    const bytes = entries.filter((e) => e.status === 201).reduce((sum, e) => sum + e.size, 0);
    const line =
      `R5 load: ${entries.length} uploads by ${accounts.length} clients in ${Math.round(loadSeconds)} s (AWS ${s.RESILIENCE_AWS_LATENCY_MS} ms away) ` +
      `(${(bytes / 1024 / 1024).toFixed(0)} MiB stored; ${statusSummary(entries)}), ` +
      `${verdict.lost.length} lost, ${verdict.phantom.length} phantom, ${serverErrors} 5xx/dropped, ` +
      `p99 ${Math.round(percentile(entries.map((e) => e.ms), 99))} ms; memory ${verdict.memory}${pipelineNote(h)}`;
    return { id: 'R5', line, failures };
  },
};
