import { randomUUID } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { GeneratedFile, type StreamedBody, postStream } from '@scs/testing/payload';
import { ProcessSampler } from '@scs/testing/proc-stats';
import { type Account, png, REQUEST_IDLE_TIMEOUT_MS, txt } from '../client';
import type { Harness } from '../harness';
import { percentile } from '../ledger';
import { mapLimit, pipelineNote, range, type Scenario, verdictFailures } from '../scenario';

const MiB = 1024 * 1024;
/** How often a slow-loris connection sends its next byte(s). */
const TRICKLE_INTERVAL_MS = 500;

/** A multipart body of form fields, then file parts (their bytes generated as they are sent). */
function form(fields: { name: string; value: string }[], files: { name: string; bytes: GeneratedFile }[] = []): StreamedBody {
  const boundary = `----scs-flood-${randomUUID()}`;
  const head = Buffer.from(fields.map((f) => `--${boundary}\r\nContent-Disposition: form-data; name="${f.name}"\r\n\r\n${f.value}\r\n`).join(''));
  const fileHead = (name: string) =>
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\nContent-Type: image/png\r\n\r\n`);
  const tail = Buffer.from(`--${boundary}--\r\n`);
  return {
    contentType: `multipart/form-data; boundary=${boundary}`,
    contentLength: head.length + files.reduce((sum, f) => sum + fileHead(f.name).length + f.bytes.size + 2, 0) + tail.length,
    *chunks() {
      yield head;
      for (const f of files) {
        yield fileHead(f.name);
        yield* f.bytes.chunks();
        yield Buffer.from('\r\n');
      }
      yield tail;
    },
  };
}

interface Flood {
  name: string;
  /** The status every request must get. */
  expect: number;
  /** The refusal must come before most of the body was sent. */
  early: boolean;
  body(): StreamedBody;
  headers: Record<string, string>;
}

/**
 * R4 limit floods and a slow-loris client (FU-01, FU-02, FU-11). Each flood sends
 * RESILIENCE_FLOOD_REQUESTS requests at once through the gateway: anonymous 100 MiB uploads
 * (401 before the body is read), uploads announcing more than MAX_UPLOAD_BYTES (413), forms with
 * hundreds of fields, a huge field, too many files; every answer must be the expected 4xx, the
 * large ones (sent at RESILIENCE_REFUSED_UPLOAD_BYTES_PER_SECOND) before the whole body went out. Then one user sends more uploads at once than
 * its rate limit allows (429 beyond it). Then RESILIENCE_SLOW_CLIENTS connections trickle
 * headers or a body for RESILIENCE_SLOW_SECONDS while another user keeps uploading: that user's
 * uploads must all succeed. Throughout, memory must stay flat (the RSS of upload and gateway
 * grows by at most RESILIENCE_MEMORY_SLACK_MIB), and afterwards nothing of the refused or
 * abandoned uploads may remain.
 */
export const floodsScenario: Scenario = {
  id: 'R4',
  title: 'limit floods and slow-loris',
  async run(h: Harness) {
    const s = h.settings;
    const n = s.RESILIENCE_FLOOD_REQUESTS;
    const [rater, bystander, slow, ...flooders] = await mapLimit(['r4-rate', 'r4-bystander', 'r4-slow', 'r4-over', 'r4-fields', 'r4-field', 'r4-files'], 4, (p) =>
      h.signUp(p),
    );
    const failures: string[] = [];
    const url = `${h.api.base}/api/files`;
    // Each authenticated flood is its own user's: together they would pass one user's rate limit.
    const auth = (i: number) => ({ authorization: `Bearer ${(flooders[i] as Account).token}` });
    const big = (size: number) => [{ name: 'big.png', bytes: new GeneratedFile(size, 7) }];
    const small = (k: number) => ({ name: `f${k}.png`, bytes: new GeneratedFile(1024, k) });
    const floods: Flood[] = [
      { name: 'anonymous 100 MiB uploads', expect: 401, early: true, body: () => form([], big(100 * MiB)), headers: {} },
      { name: 'uploads over the size limit', expect: 413, early: true, body: () => form([], big(Math.max(100 * MiB, h.maxUploadBytes + 8 * MiB))), headers: auth(0) },
      { name: 'forms with 500 fields', expect: 400, early: false, body: () => form(range(500).map((k) => ({ name: `f${k}`, value: 'x' }))), headers: auth(1) },
      { name: 'a 1 MiB form field', expect: 400, early: false, body: () => form([{ name: 'sensitive', value: 'x'.repeat(MiB) }]), headers: auth(2) },
      { name: 'forms with 3 files', expect: 400, early: false, body: () => form([], [small(1), small(2), small(3)]), headers: auth(3) },
    ];

    const paced = s.RESILIENCE_REFUSED_UPLOAD_BYTES_PER_SECOND;
    const before = h.rss();
    const watched = ['upload', 'gateway'].map((name) => ({ name, sampler: ProcessSampler.start(h.stack.child(name)?.pid) }));
    const floodLines: string[] = [];
    for (const flood of floods) {
      const bodies = range(n).map(() => flood.body());
      const results = await Promise.all(bodies.map((body) => postStream(url, { headers: flood.headers, body, agent: h.api.agent, timeoutMs: REQUEST_IDLE_TIMEOUT_MS, ...(flood.early ? { bytesPerSecond: paced } : {}) })));
      const wrong = results.filter((r) => r.status !== flood.expect);
      for (const r of wrong.slice(0, 3)) failures.push(`${flood.name}: ${r.status || 'no answer'} ${r.error ?? r.body.slice(0, 200)}, not ${flood.expect}`);
      if (wrong.length > 3) failures.push(`${flood.name}: ${wrong.length - 3} more answers that were not ${flood.expect}`);
      if (flood.early) {
        const late = results.filter((r, i) => r.status === flood.expect && r.bytesSent >= (bodies[i] as StreamedBody).contentLength);
        if (late.length) failures.push(`${flood.name}: ${late.length} refusals came only after the whole body was sent`);
      }
      const sent = flood.early
        ? `, answered after at most ${(Math.max(...results.map((r) => r.bytesSent)) / MiB).toFixed(1)} of ${((bodies[0] as StreamedBody).contentLength / MiB).toFixed(0)} MiB sent`
        : '';
      floodLines.push(`${flood.name} ${results.length - wrong.length}/${results.length} x ${flood.expect} (p99 ${Math.round(percentile(results.map((r) => r.ms), 99))} ms${sent})`);
    }

    // More uploads at once than the rate limit allows: 429 beyond it, the rest stored.
    const rated = await Promise.all(range(s.RESILIENCE_UPLOADS_PER_MINUTE + n).map(() => h.api.uploadRecorded(h.ledger, 'R4', rater as Account, txt('rate flood', 1))));
    const wrongRated = rated.filter((e) => e.status !== 201 && e.status !== 429);
    for (const e of wrongRated.slice(0, 3)) failures.push(`rate flood: #${e.request} ${e.status || 'no answer'} ${e.code ?? e.error ?? ''}, not 201 or 429`.trim());
    const limited = rated.filter((e) => e.status === 429).length;
    if (limited === 0) failures.push(`rate flood: ${rated.length} uploads at once and none got 429`);

    // Slow-loris beside a user who keeps uploading.
    const slowResult = await slowLoris(h, slow as Account, bystander as Account);
    failures.push(...slowResult.failures);

    const peaks = watched.map(({ name, sampler }) => ({ name, peak: sampler?.stop()?.peakRssMiB ?? 0 }));
    const verdict = await h.verify(h.ledger.of('R4'));
    failures.push(...verdictFailures(verdict));
    // Flat memory: the floods may not make a process's RSS grow by more than the slack.
    for (const { name, peak } of peaks) {
      const limit = (before[name] ?? peak) + s.RESILIENCE_MEMORY_SLACK_MIB;
      if (peak > limit) failures.push(`${name} peaked at ${Math.round(peak)} MiB RSS during the floods, over ${Math.round(limit)} (${Math.round(before[name] ?? 0)} before)`);
    }
    const line =
      `R4 floods and slow-loris: ${floodLines.join('; ')}; rate flood ${rated.length - limited} x 201 + ${limited} x 429; ` +
      `${slowResult.line}; peak RSS ${peaks.map((p) => `${p.name} ${Math.round(p.peak)} MiB (${Math.round(before[p.name] ?? 0)} before)`).join(', ')}; ` +
      `${verdict.lost.length} lost, ${verdict.phantom.length} phantom${pipelineNote(h)}`;
    return { id: 'R4', line, failures };
  },
};

/**
 * RESILIENCE_SLOW_CLIENTS connections to the gateway for RESILIENCE_SLOW_SECONDS: half send
 * their headers one line at a time, half announce a 1 MiB upload of `slow` and trickle its body,
 * while `bystander` uploads one file after another. Then the slow connections are closed.
 */
async function slowLoris(h: Harness, slow: Account, bystander: Account): Promise<{ line: string; failures: string[] }> {
  const s = h.settings;
  const failures: string[] = [];
  const { port } = new URL(h.api.base);
  const sockets: { socket: Socket; closedByServer: boolean; answer: string }[] = [];
  const timers: NodeJS.Timeout[] = [];
  let ending = false;
  for (let i = 0; i < s.RESILIENCE_SLOW_CLIENTS; i += 1) {
    const socket = connect({ host: '127.0.0.1', port: Number(port) });
    const entry = { socket, closedByServer: false, answer: '' };
    sockets.push(entry);
    socket.on('data', (d: Buffer) => (entry.answer ||= d.toString('latin1').split('\r\n', 1)[0] ?? ''));
    socket.on('error', () => undefined);
    socket.on('close', () => (entry.closedByServer ||= !ending));
    if (i % 2 === 0) {
      socket.write(`POST /api/files HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`);
      let k = 0;
      timers.push(setInterval(() => socket.writable && socket.write(`X-Slow-${k++}: ${'a'.repeat(8)}\r\n`), TRICKLE_INTERVAL_MS));
    } else {
      const boundary = `----scs-slow-${i}`;
      socket.write(
        `POST /api/files HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${slow.token}\r\n` +
          `Content-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${MiB}\r\n\r\n` +
          `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="slow.png"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\n`,
      );
      timers.push(setInterval(() => socket.writable && socket.write(Buffer.alloc(16, i)), TRICKLE_INTERVAL_MS));
    }
  }

  const until = performance.now() + s.RESILIENCE_SLOW_SECONDS * 1000;
  const specs = [txt('bystander 1 B', 1), png('bystander medium', s.RESILIENCE_MEDIUM_BYTES)];
  let k = 0;
  // The bystander stays below its own upload rate limit: it shows the service answering others, not the limit.
  while (performance.now() < until && k < s.RESILIENCE_UPLOADS_PER_MINUTE - 1) await h.api.uploadRecorded(h.ledger, 'R4', bystander, specs[k++ % specs.length] as (typeof specs)[number]);
  const bystanders = h.ledger.of('R4').filter((e) => e.userId === bystander.userId);
  for (const e of bystanders.filter((b) => b.status !== 201)) failures.push(`bystander #${e.request} ${e.label}: ${e.status || 'no answer'} ${e.code ?? e.error ?? ''} during the slow-loris`.trim());

  ending = true;
  for (const t of timers) clearInterval(t);
  const dropped = sockets.filter((x) => x.closedByServer).length;
  const answered = sockets.filter((x) => x.answer);
  const answers = [...new Set(answered.map((x) => x.answer))].join(', ');
  for (const x of answered) if (/^HTTP\/1\.1 5/.test(x.answer)) failures.push(`a slow-loris connection was answered ${x.answer}`);
  await Promise.all(
    sockets.map(
      ({ socket }) =>
        new Promise<void>((resolve) => {
          if (socket.destroyed) return resolve();
          socket.once('close', () => resolve());
          socket.destroy();
        }),
    ),
  );
  return {
    line:
      `${sockets.length} slow-loris connections for ${s.RESILIENCE_SLOW_SECONDS} s: ${answered.length} answered${answers ? ` (${answers})` : ''}, ` +
      `${dropped} dropped by the server; bystander ${bystanders.filter((b) => b.status === 201).length}/${bystanders.length} stored ` +
      `(p99 ${Math.round(percentile(bystanders.map((b) => b.ms), 99))} ms)`,
    failures,
  };
}
