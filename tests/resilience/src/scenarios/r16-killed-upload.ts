import { GetCommand, paginateQuery } from '@aws-sdk/lib-dynamodb';
import { RESERVATION_KEY_PREFIX, usageKey } from '@scs/common/files';
import { png, txt } from '../client';
import type { Harness } from '../harness';
import { mapLimit, pipelineNote, range, type Scenario, verdictFailures, waitFor } from '../scenario';

/** The reservation items of one user: how many, and the latest time any of them is held until (epoch seconds). */
async function reservationsOf(h: Harness, userId: string): Promise<{ count: number; until: number }> {
  let count = 0;
  let until = 0;
  const pages = paginateQuery(
    { client: h.aws.dynamo },
    {
      TableName: h.names.FILES_TABLE,
      KeyConditionExpression: 'userId = :u AND begins_with(fileId, :r)',
      ExpressionAttributeValues: { ':u': userId, ':r': RESERVATION_KEY_PREFIX },
      ConsistentRead: true,
    },
  );
  for await (const page of pages) {
    for (const item of page.Items ?? []) {
      count += 1;
      until = Math.max(until, Number(item.until ?? 0));
    }
  }
  return { count, until };
}

/** The usage counters of one user as the files table holds them. */
async function countersOf(h: Harness, userId: string): Promise<{ usedBytes: number; reservedBytes: number }> {
  const out = await h.aws.dynamo.send(new GetCommand({ TableName: h.names.FILES_TABLE, Key: usageKey(userId), ConsistentRead: true }));
  return { usedBytes: Number(out.Item?.usedBytes ?? 0), reservedBytes: Number(out.Item?.reservedBytes ?? 0) };
}

/**
 * R16 a process killed mid-upload (SIGKILL, an instance terminated). RESILIENCE_KILLED_UPLOADS
 * users each store a small file, then start a paced upload (below one S3 part, so S3 holds
 * nothing of it yet) through the gateway. Once every one of them holds its quota reservation
 * (read from the files table: the state, not a delay), the upload service is killed with SIGKILL:
 * the reservations stay counted, renewed by nobody. The service is started again (the same
 * command and environment) and stores a file; once the reservations' leases have run out (the
 * time they are held until, read from their items), backup-sync's admin route runs the usage
 * reconciliation. Every user's quota must then be exact: usage equal to the sum of the files,
 * nothing reserved, no reservation item left, and the ledger exact (the killed uploads left
 * nothing, every 201 is stored).
 */
export const killedUploadScenario: Scenario = {
  id: 'R16',
  title: 'upload service killed mid-upload, usage reconciled',
  async run(h: Harness) {
    if (!h.features.backup || !h.admin) {
      return {
        id: 'R16',
        line: 'R16 killed upload: SKIPPED (no backup-sync admin API on this stack)',
        failures: [],
        skipped: 'the usage reconciliation runs in backup-sync, which this stack does not serve',
      };
    }
    const s = h.settings;
    const n = s.RESILIENCE_KILLED_UPLOADS;
    const failures: string[] = [];
    const accounts = await mapLimit(range(n), 8, (i) => h.signUp(`r16-${i}`));
    const first = await mapLimit(accounts, 8, (account, i) => h.api.uploadRecorded(h.ledger, 'R16', account, txt(`kept ${i}`, 1000 + i)));
    for (const e of first) if (e.status !== 201) failures.push(`#${e.request} upload before the kill: ${e.status} ${e.code ?? e.error ?? ''}`.trim());

    const killed = accounts.map((account, i) =>
      h.api.uploadRecorded(h.ledger, 'R16', account, { ...png(`killed ${i}`, s.RESILIENCE_KILLED_UPLOAD_BYTES), bytesPerSecond: s.RESILIENCE_KILLED_UPLOAD_BYTES_PER_SECOND }),
    );
    // Every paced upload holds its reservation now: the service is working on all of them.
    await waitFor('every paced upload to hold its quota reservation', async () => (await Promise.all(accounts.map((a) => reservationsOf(h, a.userId)))).every((r) => r.count === 1), 60_000, 100);
    const exit = await h.stack.stopChild('upload', 'SIGKILL');
    const cut = await Promise.all(killed);
    for (const e of cut) if (e.status === 201) failures.push(`#${e.request} upload in flight at the kill: answered 201 (the kill came too late: lower RESILIENCE_KILLED_UPLOAD_BYTES_PER_SECOND)`);

    const left = await Promise.all(accounts.map((a) => reservationsOf(h, a.userId)));
    const leftCount = left.reduce((sum, r) => sum + r.count, 0);
    const leftBytes = (await Promise.all(accounts.map((a) => countersOf(h, a.userId)))).reduce((sum, c) => sum + c.reservedBytes, 0);
    if (leftCount !== n) failures.push(`${leftCount} reservations left by the killed service, not ${n}: the scenario did not kill uploads mid-way`);

    await h.stack.restartChild('upload');
    const after = await h.api.uploadRecorded(h.ledger, 'R16', accounts[0] as (typeof accounts)[number], png('after restart', 4096));
    if (after.status !== 201) failures.push(`the first upload after the restart answered ${after.status} ${after.code ?? after.error ?? ''}`.trim());

    // The killed service renews nothing: the reservations run out at the time their items say.
    const expires = Math.max(...left.map((r) => r.until));
    await waitFor('the leases of the killed uploads to run out', () => Date.now() / 1000 > expires + 1, Math.max(0, expires * 1000 - Date.now()) + 30_000, 250);
    const res = await h.api.json<{ releasedReservations?: number; releasedBytes?: number; failed?: number }>('POST', '/api/backup/usage/reconcile', {
      token: (await h.api.fresh(h.admin)).token,
      body: {},
    });
    if (res.status !== 200) failures.push(`the usage reconciliation answered ${res.status}: ${JSON.stringify(res.json)}`);
    const released = res.json.releasedReservations ?? 0;
    if (released < n) failures.push(`the usage reconciliation released ${released} reservations, not at least the ${n} of the killed uploads`);
    if (res.json.failed) failures.push(`the usage reconciliation failed for ${res.json.failed} user(s)`);

    // Quota exact for every user: no reservation item, nothing reserved, used = the files (checked by verify).
    for (const a of accounts) {
      const r = await reservationsOf(h, a.userId);
      const c = await countersOf(h, a.userId);
      if (r.count || c.reservedBytes) failures.push(`user ${a.userId}: ${r.count} reservation(s), ${c.reservedBytes} bytes reserved after the reconciliation`);
    }
    const verdict = await h.verify(h.ledger.of('R16'));
    failures.push(...verdictFailures(verdict));
    const line =
      `R16 SIGKILL upload service: ${n} uploads in flight killed (${exit.signal ?? `code ${exit.code}`}), ` +
      `${leftCount} reservations (${leftBytes} bytes) left; restarted, next upload ${after.status}; ` +
      `usage reconciliation released ${released} (${res.json.releasedBytes ?? 0} bytes); ` +
      `${n} users' quota ${failures.length ? 'NOT exact' : 'exact'}; ${verdict.lost.length} lost, ${verdict.phantom.length} phantom${pipelineNote(h)}`;
    return { id: 'R16', line, failures };
  },
};
