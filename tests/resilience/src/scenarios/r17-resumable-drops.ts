import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { paginateObjectVersions } from '@scs/common/s3-versions';
import { createCipheriv, createHash, type Hash } from 'node:crypto';
import { Agent, request as httpRequest } from 'node:http';
import { statfsSync } from 'node:fs';
import type { Account } from '../client';
import type { Harness } from '../harness';
import { FaultProxy } from '@scs/testing/fault-proxy';
import { type Scenario, verdictFailures } from '../scenario';

/** Where backup-sync keeps the backups of deleted files (backup-sync's DELETED_PREFIX). */
const DELETED_PREFIX = 'deleted/';
import { PNG_SIGNATURE } from '@scs/testing/payload';

const MiB = 1024 * 1024;
/** Bytes generated at a time: a part is streamed in chunks of this size, never held whole. */
const CHUNK_BYTES = MiB;
/** Parts signed per `/parts` request (a browser asks for a batch ahead, with their checksums). */
const SIGN_BATCH = 16;

/**
 * The bytes of a file of `size` bytes, the same for the same seed, that can be produced from any
 * offset: AES-128-CTR of zeros (the counter block is the offset / 16), the PNG signature first. A
 * part is generated again, identical, when it is sent again; the file is never held or stored.
 */
class DeterministicFile {
  private readonly key: Buffer;

  constructor(
    readonly size: number,
    seed: number,
  ) {
    this.key = createHash('sha256').update(`r17:${seed}`).digest().subarray(0, 16);
  }

  /** The bytes `start` (a multiple of 16) to `end` (exclusive), in chunks of at most CHUNK_BYTES. */
  *range(start: number, end: number): Generator<Buffer> {
    const iv = Buffer.alloc(16);
    iv.writeBigUInt64BE(BigInt(start / 16), 8);
    const cipher = createCipheriv('aes-128-ctr', this.key, iv);
    const zeros = Buffer.alloc(CHUNK_BYTES);
    for (let at = start; at < end; at += CHUNK_BYTES) {
      const n = Math.min(CHUNK_BYTES, end - at);
      const chunk = cipher.update(n === CHUNK_BYTES ? zeros : zeros.subarray(0, n));
      if (at === 0) PNG_SIGNATURE.copy(chunk, 0, 0, Math.min(PNG_SIGNATURE.length, n));
      yield chunk;
    }
  }
}

interface SignedPart {
  partNumber: number;
  url: string;
  headers: Record<string, string>;
}

/** One part PUT through the link proxy: the status S3 answered, or 0 and the error when the link dropped. */
function putPart(
  agent: Agent,
  link: { host: string; port: number },
  part: SignedPart,
  length: number,
  chunks: Iterable<Buffer>,
): Promise<{ status: number; error?: string }> {
  const url = new URL(part.url);
  return new Promise((resolve) => {
    const req = httpRequest({
      host: link.host,
      port: link.port,
      agent,
      method: 'PUT',
      path: `${url.pathname}${url.search}`,
      // The connection goes to the link proxy; the Host header stays the one the URL was signed for.
      headers: { host: url.host, 'content-length': String(length), ...part.headers },
    });
    let settled = false;
    const done = (out: { status: number; error?: string }) => {
      if (settled) return;
      settled = true;
      resolve(out);
    };
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => done({ status: res.statusCode ?? 0 }));
      res.on('error', (err) => done({ status: 0, error: err.message }));
    });
    req.on('error', (err) => done({ status: 0, error: err.message }));
    const iterator = chunks[Symbol.iterator]();
    const pump = () => {
      for (;;) {
        const next = iterator.next();
        if (next.done) return void req.end();
        if (!req.write(next.value)) return void req.once('drain', pump);
      }
    };
    pump();
  });
}

/** The SHA-256 (base64) of one part, generated for it (and fed to the whole file's hash on the first pass). */
function partDigest(file: DeterministicFile, start: number, end: number, whole?: Hash): string {
  const hash = createHash('sha256');
  for (const chunk of file.range(start, end)) {
    hash.update(chunk);
    whole?.update(chunk);
  }
  return hash.digest('base64');
}

/** Bytes used on the file system that holds `path`. */
function usedBytes(path: string): number {
  const s = statfsSync(path);
  return (s.blocks - s.bfree) * s.bsize;
}

/**
 * R17 a resumable direct upload of RESILIENCE_RESUMABLE_BYTES (5 GiB by default) with link drops.
 * The client does what the browser does: create the upload (`POST /api/files/uploads`), compute
 * each part's SHA-256 while generating it (the bytes are generated, never held or stored), ask for
 * part URLs in batches, PUT each part straight to S3, here through a fault proxy in front of the
 * emulator (the connection goes to the proxy, the Host header stays the signed one). The proxy
 * drops the link (TCP reset) halfway through RESILIENCE_RESUMABLE_DROPS parts spread over the
 * file; after each drop the client asks `GET /api/files/uploads/{id}` which parts S3 holds and
 * sends only the missing ones, then completes with the whole file's SHA-256 (as the browser
 * does; at 5 GiB S3 still computes it and the service compares the two). Checked: at most one part re-sent per drop (part
 * PUTs <= parts + drops), every drop seen, the file listed with its size, its download's SHA-256
 * that of the generated bytes, and the ledger exact (quota equal to what is stored, no pending
 * record, no open multipart upload, nothing reserved) with its backup, which the backup
 * reconciliation makes at once (its object-created event came minutes before the record, and the
 * event's retries back off). The file is then deleted, with its backups, so the emulator frees
 * their bytes.
 */
export const resumableDropsScenario: Scenario = {
  id: 'R17',
  title: 'resumable upload through link drops',
  async run(h: Harness) {
    const s = h.settings;
    const size = s.RESILIENCE_RESUMABLE_BYTES;
    const drops = s.RESILIENCE_RESUMABLE_DROPS;
    const failures: string[] = [];
    const started = performance.now();
    const diskBefore = usedBytes(h.outputDir);
    let diskPeak = diskBefore;
    const sampleDisk = () => void (diskPeak = Math.max(diskPeak, usedBytes(h.outputDir)));

    const account: Account = await h.signUp('r17');
    const api = async <T>(method: string, path: string, body?: unknown) =>
      h.api.json<T & { code?: string; message?: string }>(method, `/api/files/uploads${path}`, {
        token: (await h.api.fresh(account)).token,
        ...(body !== undefined ? { body } : {}),
        timeoutMs: 600_000,
      });

    const name = 'r17-resumable.png';
    const created = await api<{ id: string; partSize: number; partCount: number }>('POST', '', { name, size, contentType: 'image/png', sensitive: false });
    if (created.status !== 201) throw new Error(`create answered ${created.status}: ${JSON.stringify(created.json)}`);
    const { id, partSize, partCount } = created.json;
    const bounds = (n: number) => [(n - 1) * partSize, Math.min(size, n * partSize)] as const;

    const link = new FaultProxy({ host: '127.0.0.1', port: h.config.EMULATOR_PORT });
    await link.start();
    // One connection per part: a reset hits exactly the part being sent.
    const agent = new Agent({ keepAlive: false });
    const dropAt = new Set(Array.from({ length: drops }, (_, i) => Math.max(1, Math.round(((i + 1) * partCount) / (drops + 1)))));
    const file = new DeterministicFile(size, Date.now());
    const whole = createHash('sha256');
    const checksums = new Map<number, string>();
    const signed = new Map<number, SignedPart>();
    let firstPassUpTo = 0;
    let puts = 0;
    let dropsSeen = 0;
    let described = 0;

    /** The checksum of part n (the first time, in part order, also fed to the whole file's hash). */
    const checksumOf = (n: number): string => {
      let c = checksums.get(n);
      if (c === undefined) {
        if (n !== firstPassUpTo + 1) throw new Error(`part ${n} hashed out of order`);
        const [start, end] = bounds(n);
        c = partDigest(file, start, end, whole);
        firstPassUpTo = n;
        checksums.set(n, c);
      }
      return c;
    };
    const sign = async (numbers: number[]) => {
      const res = await api<{ parts: SignedPart[] }>('POST', `/${id}/parts`, { parts: numbers.map((n) => ({ partNumber: n, checksum: checksumOf(n) })) });
      if (res.status !== 200) throw new Error(`/parts answered ${res.status}: ${JSON.stringify(res.json)}`);
      for (const p of res.json.parts) signed.set(p.partNumber, p);
    };

    try {
      let missing = Array.from({ length: partCount }, (_, i) => i + 1);
      while (missing.length > 0) {
        let dropped = false;
        for (let i = 0; i < missing.length && !dropped; i += 1) {
          const n = missing[i] as number;
          if (!signed.has(n)) await sign(missing.slice(i, i + SIGN_BATCH).filter((m) => !signed.has(m)));
          const [start, end] = bounds(n);
          const drop = dropAt.has(n);
          if (drop) {
            dropAt.delete(n);
            link.set({ resetAfterBytes: Math.floor((end - start) / 2) });
          }
          puts += 1;
          const out = await putPart(agent, { host: '127.0.0.1', port: link.port }, signed.get(n) as SignedPart, end - start, file.range(start, end));
          if (drop) link.clear();
          if (out.status === 200) continue;
          if (out.status !== 0) throw new Error(`part ${n} answered ${out.status}`);
          if (!drop) throw new Error(`part ${n} failed with no drop made: ${out.error ?? ''}`);
          dropsSeen += 1;
          dropped = true;
        }
        if (!dropped) break;
        // After a drop: which parts does S3 hold? Send only the others (the rest of the file included).
        sampleDisk();
        const now = await api<{ parts: { partNumber: number; size: number }[] }>('GET', `/${id}`);
        described += 1;
        if (now.status !== 200) throw new Error(`GET /uploads/${id} answered ${now.status}: ${JSON.stringify(now.json)}`);
        const held = new Set(now.json.parts.filter((p) => p.size === bounds(p.partNumber)[1] - bounds(p.partNumber)[0]).map((p) => p.partNumber));
        missing = Array.from({ length: partCount }, (_, i) => i + 1).filter((n) => !held.has(n));
      }
    } finally {
      agent.destroy();
      await link.stop();
    }
    const sent = performance.now();
    sampleDisk();

    // As the browser does: the whole file's SHA-256 at complete (checked against S3's up to
    // COPY_IN_PARTS_ABOVE_BYTES, the file's recorded one above).
    const sha256 = whole.digest('hex');
    const done = await api<{ id?: string; size?: number; sha256?: string }>('POST', `/${id}/complete`, { checksum: sha256 });
    sampleDisk();
    const entry = h.ledger.record({
      scenario: 'R17',
      userId: account.userId,
      label: `resumable ${size} B`,
      name,
      size,
      sha256,
      sensitive: false,
      expect: 201,
      status: done.status,
      ...(done.json.code ? { code: done.json.code } : {}),
      ...(done.status === 201 && done.json.id ? { fileId: done.json.id } : {}),
      ...(done.status === 201 && (done.json.size !== size || done.json.sha256 !== sha256) ? { mismatch: `answered size ${done.json.size} sha256 ${done.json.sha256}` } : {}),
      ms: Math.round(performance.now() - started),
      bytesSent: size,
      attempt: 1,
    });
    const completed = performance.now();
    if (done.status !== 201) failures.push(`complete answered ${done.status}: ${JSON.stringify(done.json)}`);
    if (dropsSeen !== drops) failures.push(`${dropsSeen} link drops seen, not ${drops}`);
    if (puts > partCount + drops) failures.push(`${puts} part PUTs for ${partCount} parts and ${drops} drops: parts S3 held were sent again`);

    let downloadOk = false;
    if (done.status === 201) {
      const token = (await h.api.fresh(account)).token;
      const listed = await h.api.json<{ items: { id: string; size: number }[] }>('GET', '/api/files', { token });
      const item = listed.json.items?.find((f) => f.id === id);
      if (!item) failures.push(`the file ${id} is not listed`);
      else if (item.size !== size) failures.push(`the file is listed with ${item.size} bytes, not ${size}`);
      const link2 = await h.api.json<{ url?: string }>('GET', `/api/files/${id}/download?redirect=false`, { token });
      if (!link2.json.url) failures.push(`download answered ${link2.status}: ${JSON.stringify(link2.json)}`);
      else {
        const res = await fetch(link2.json.url);
        const hash = createHash('sha256');
        let bytes = 0;
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          hash.update(chunk);
          bytes += chunk.length;
        }
        const got = hash.digest('hex');
        downloadOk = res.status === 200 && got === sha256 && bytes === size;
        if (!downloadOk) failures.push(`download: ${res.status}, ${bytes} bytes, sha256 ${got}, sent ${sha256}`);
      }
    }
    const downloaded = performance.now();
    sampleDisk();
    // The backup: its object-created event came at CompleteMultipartUpload, long before the record
    // (S3's copy that computes the SHA-256 of a file this size takes minutes on the emulator), so
    // backup-sync's retries back off; the reconciliation (what runs every RECONCILE_INTERVAL_SECONDS)
    // copies it now, within the checks' settle window.
    let reconciled = '';
    if (done.status === 201 && h.features.backup && h.admin) {
      const res = await h.api.json<{ copied?: number; failed?: number }>('POST', '/api/backup/reconcile', { token: (await h.api.fresh(h.admin)).token, timeoutMs: 1_800_000 });
      if (res.status !== 200 || res.json.failed) failures.push(`the backup reconciliation answered ${res.status}: ${JSON.stringify(res.json)}`);
      reconciled = `, reconcile copied ${res.json.copied ?? '?'}`;
      sampleDisk();
    }
    // The object's digest was just compared through the download: the ledger checks read sizes only.
    const verdict = await h.verify(h.ledger.of('R17'), { digests: false });
    failures.push(...verdictFailures(verdict));
    const verified = performance.now();

    // Free the emulator's bytes: the file (every version, through the API) and its backups (the harness's own clients).
    let cleanup = '';
    if (entry.fileId) {
      const del = await h.api.json('DELETE', `/api/files/${id}`, { token: (await h.api.fresh(account)).token });
      if (del.status !== 204) failures.push(`deleting the file answered ${del.status}: ${JSON.stringify(del.json)}`);
      cleanup = `; deleted, backups removed: ${await removeBackups(h, account.userId)}`;
    }
    const seconds = (a: number, b: number) => Math.round((b - a) / 1000);
    const line =
      `R17 resumable ${(size / MiB).toFixed(0)} MiB in ${partCount} parts of ${partSize / MiB} MiB: ${dropsSeen}/${drops} link drops, ` +
      `${puts} part PUTs (${puts - partCount} re-sent), ${described} resumes; complete ${done.status}, download ${downloadOk ? 'SHA-256 equal' : 'WRONG'}; ` +
      `${seconds(started, sent)} s parts, ${seconds(sent, completed)} s complete, ${seconds(completed, downloaded)} s download, ${seconds(downloaded, verified)} s backup and checks${reconciled} ` +
      `(${seconds(started, verified)} s); disk +${((diskPeak - diskBefore) / 1024 ** 3).toFixed(1)} GiB at peak${cleanup}; ` +
      `${verdict.lost.length} lost, ${verdict.phantom.length} phantom`;
    return { id: 'R17', line, failures };
  },
};

/** Versions (and delete markers) of objects under `Prefix` in the backup bucket. */
async function backupVersions(h: Harness, Prefix: string): Promise<{ Key?: string | undefined; VersionId?: string | undefined }[]> {
  const found: { Key?: string | undefined; VersionId?: string | undefined }[] = [];
  for await (const page of paginateObjectVersions(h.aws.s3, { Bucket: h.names.BACKUP_BUCKET, Prefix })) {
    found.push(...(page.Versions ?? []), ...(page.DeleteMarkers ?? []));
  }
  return found;
}

/**
 * Deletes every version of the user's backups, live and retired (under deleted/): the harness frees
 * the emulator's bytes, which the product keeps for the retention period. Returns how many
 * versions it deleted. (A retirement backup-sync makes later finds no backup and does nothing.)
 */
async function removeBackups(h: Harness, userId: string): Promise<number> {
  let removed = 0;
  for (const prefix of [`users/${userId}/`, `${DELETED_PREFIX}users/${userId}/`]) {
    for (const v of await backupVersions(h, prefix)) {
      await h.aws.s3.send(new DeleteObjectCommand({ Bucket: h.names.BACKUP_BUCKET, Key: v.Key, VersionId: v.VersionId, BypassGovernanceRetention: true }));
      removed += 1;
    }
  }
  return removed;
}
