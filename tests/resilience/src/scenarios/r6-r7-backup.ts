import { GetQueueAttributesCommand, GetQueueUrlCommand } from '@aws-sdk/client-sqs';
import { deadLetterQueueName } from '@scs/common';
import { png, txt } from '../client';
import type { Harness } from '../harness';
import { mapLimit, range, type Scenario, verdictFailures, waitFor } from '../scenario';

interface ReconcileResult {
  scanned?: number;
  copied?: number;
  alreadyInSync?: number;
  failed?: number;
}

/** The backup queue and its dead-letter queue as SQS counts them, read from the emulator. */
async function queueDepths(h: Harness): Promise<string> {
  const depth = async (QueueName: string) => {
    const { QueueUrl } = await h.aws.sqs.send(new GetQueueUrlCommand({ QueueName }));
    const names = ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'] as const;
    const out = await h.aws.sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: [...names] }));
    const [visible, inFlight, delayed] = names.map((n) => out.Attributes?.[n] ?? '?');
    return `${QueueName}: ${visible} visible, ${inFlight} in flight, ${delayed} delayed`;
  };
  const queue = h.names.BACKUP_EVENTS_QUEUE;
  return `${await depth(queue)}; ${await depth(deadLetterQueueName(queue))}`;
}

/**
 * R6/R7 backup-sync loses AWS, then crashes, during load. RESILIENCE_FAULT_CLIENTS clients keep
 * uploading (a third of the files sensitive). R6: backup-sync's way to the emulator (its own
 * fault proxy: queue and buckets) is gone for RESILIENCE_OUTAGE_SECONDS. R7: backup-sync is
 * killed (SIGKILL, events pending) and started again. Uploads must never fail; afterwards every
 * file must have its verified backup (caught up through the durable queue, not by the
 * reconciler), and an on-demand reconciliation must find nothing to copy and nothing failed.
 */
export const backupScenario: Scenario = {
  id: 'R6',
  title: 'backup-sync outage and crash',
  async run(h: Harness) {
    if (!h.features.backup) {
      return {
        id: 'R6',
        line: 'R6/R7 backup-sync outage and crash: SKIPPED: this stack makes no backups (GET /api/backup/status does not answer 200)',
        failures: [],
        skipped: 'backup-sync makes no backups',
      };
    }
    const s = h.settings;
    const admin = h.admin;
    if (!admin) throw new Error('the admin is not signed in');
    const accounts = await mapLimit(range(s.RESILIENCE_FAULT_CLIENTS), 8, (i) => h.signUp(`r6-${i}`));
    const specs = [png('medium-1', s.RESILIENCE_MEDIUM_BYTES - 1), txt('1 B', 1), png('medium+1 sensitive', s.RESILIENCE_MEDIUM_BYTES + 1, true)];
    let stored = 0;
    let stop = false;
    const clients = accounts.map(async (account, i) => {
      for (let n = i; !stop; n += 1) {
        const e = await h.api.uploadRecorded(h.ledger, 'R6', account, specs[n % specs.length] as (typeof specs)[number]);
        if (e.status === 201) stored += 1;
      }
    });
    const steps: string[] = [];
    try {
      const enough = (after: number) => () => stored >= after + accounts.length;
      await waitFor('uploads before the outage', enough(0), 60_000);
      // R6: backup-sync cannot reach its queue or the buckets.
      await h.backupProxy.stop();
      const before = stored;
      await new Promise((resolve) => setTimeout(resolve, s.RESILIENCE_OUTAGE_SECONDS * 1000));
      steps.push(`${stored - before} uploads while backup-sync had no AWS for ${s.RESILIENCE_OUTAGE_SECONDS} s`);
      await h.backupProxy.start();
      // R7: killed with events pending, then started again.
      await waitFor('uploads before the crash', enough(stored), 60_000);
      const exit = await h.stack.stopChild('backup-sync', 'SIGKILL');
      const beforeCrash = stored;
      await waitFor('uploads while backup-sync is down', enough(beforeCrash), 60_000);
      await h.stack.restartChild('backup-sync');
      steps.push(`${stored - beforeCrash} while it was dead (${exit.signal ?? `code ${exit.code}`}) and restarting`);
      await waitFor('uploads after the restart', enough(stored), 60_000);
    } finally {
      stop = true;
      await h.backupProxy.start();
      await Promise.all(clients);
    }

    const entries = h.ledger.of('R6');
    const failures: string[] = [];
    for (const e of entries.filter((x) => x.status !== 201)) {
      failures.push(`#${e.request} ${e.label}: ${e.status || 'no answer'} ${e.code ?? e.error ?? ''}: uploads must not depend on backup-sync`.trim());
    }
    const verdict = await h.verify(entries);
    failures.push(...verdictFailures(verdict));
    // Events the killed process had received come back after their visibility timeout: the queue drains.
    const pending = async () => (await h.api.json<{ pending?: number }>('GET', '/api/backup/status', { token: (await h.api.fresh(admin)).token })).json.pending;
    let left = await pending();
    const drainStarted = performance.now();
    while (left !== 0 && performance.now() - drainStarted < s.RESILIENCE_SETTLE_SECONDS * 1000) {
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      left = await pending();
    }
    const drainedMs = performance.now() - drainStarted;
    if (left !== 0) failures.push(`backup status ${s.RESILIENCE_SETTLE_SECONDS} s after settling: ${left} events still pending (${await queueDepths(h)})`);
    const reconcile = await h.api.json<ReconcileResult>('POST', '/api/backup/reconcile', { token: (await h.api.fresh(admin)).token, timeoutMs: 300_000 });
    const r = reconcile.json;
    if (reconcile.status !== 200) failures.push(`reconcile answered ${reconcile.status}: ${JSON.stringify(r)}`);
    else if (r.copied !== 0 || r.failed !== 0) {
      failures.push(`reconcile after catching up: copied ${r.copied}, failed ${r.failed}: the event path missed files (R7: the queue must keep them)`);
    }
    const line =
      `R6/R7 backup-sync outage and crash: ${entries.length} uploads, ${entries.filter((e) => e.status !== 201).length} failed; ${steps.join('; ')}; ` +
      `every backup in place ${(verdict.checksPassedMs / 1000).toFixed(1)} s after the load; queue ${left === 0 ? 'drained' : 'NOT drained'} ${(drainedMs / 1000).toFixed(1)} s later; reconcile scanned ${r.scanned}, copied ${r.copied}, failed ${r.failed}; ` +
      `${verdict.lost.length} lost, ${verdict.phantom.length} phantom`;
    return { id: 'R6', line, failures };
  },
};
