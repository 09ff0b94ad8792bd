import { PNG_SIGNATURE } from '@scs/testing/payload';
import { png, txt, type UploadSpec } from './client';
import { seededRandom } from './scenario';
import type { ResilienceSettings } from './settings';

const MiB = 1024 * 1024;

/** The Content-Length a too-large file is sent with is this much over the limit. */
const OVER_LIMIT_BYTES = MiB;

/**
 * The R5 mix, with weights: empty and one-byte text files, PNGs of one byte less than, exactly,
 * and one byte more than RESILIENCE_MEDIUM_BYTES (lib-storage's part boundary at 5 MiB), large
 * PNGs, and refusals (a program, a text file named .png, an empty .png, a file over the limit
 * announced by its Content-Length and one sent without it, both at RESILIENCE_REFUSED_UPLOAD_BYTES_PER_SECOND),
 * and clients that go away halfway through a file (R3). A quarter of the accepted files are sensitive.
 */
export function loadMix(s: ResilienceSettings, maxUploadBytes: number): { spec: UploadSpec; weight: number }[] {
  const M = s.RESILIENCE_MEDIUM_BYTES;
  const paced = s.RESILIENCE_REFUSED_UPLOAD_BYTES_PER_SECOND;
  const accepted: { spec: UploadSpec; weight: number }[] = [
    { spec: txt('0 B', 0), weight: 10 },
    { spec: txt('1 B', 1), weight: 10 },
    { spec: png('medium-1', M - 1), weight: 8 },
    { spec: png('medium', M), weight: 8 },
    { spec: png('medium+1', M + 1), weight: 8 },
    { spec: png('large', s.RESILIENCE_LARGE_BYTES), weight: 2 },
  ];
  const refused: { spec: UploadSpec; weight: number }[] = [
    {
      spec: { label: 'refused program', name: 'setup.exe', size: 4096, content: 'binary', head: Buffer.from('MZ'), sensitive: false, expect: 415 },
      weight: 2,
    },
    { spec: { label: 'refused text as .png', name: 'photo.png', size: 64 * 1024, content: 'text', head: Buffer.alloc(0), sensitive: false, expect: 415 }, weight: 2 },
    { spec: { label: 'refused empty .png', name: 'empty.png', size: 0, content: 'binary', head: PNG_SIGNATURE, sensitive: false, expect: 415 }, weight: 2 },
    // R3: the client goes away mid-file (its upload to S3 has begun): nothing of it may stay.
    { spec: { ...png('client gone mid-upload', M + 1), expect: 0, disconnectAfterBytes: Math.floor(M / 2) }, weight: 2 },
    { spec: { ...png('refused over the limit', maxUploadBytes + OVER_LIMIT_BYTES), expect: 413, bytesPerSecond: paced }, weight: 1 },
    {
      spec: { ...png('refused over the limit, chunked', maxUploadBytes + OVER_LIMIT_BYTES), expect: 413, chunked: true, bytesPerSecond: paced },
      weight: 1,
    },
  ];
  return [...accepted, ...refused];
}

/**
 * A client's sequence through the mix: every entry as often as its weight (a quarter of the
 * accepted copies sensitive), shuffled with the client's own seed; cycled when used up.
 */
export function deck(mix: { spec: UploadSpec; weight: number }[], seed: number): () => UploadSpec {
  const cards: UploadSpec[] = [];
  for (const { spec, weight } of mix) {
    for (let k = 0; k < weight; k += 1) cards.push(spec.expect === 201 || spec.expect === 0 ? { ...spec, sensitive: k % 4 === 0 } : spec);
  }
  const random = seededRandom(seed);
  for (let i = cards.length - 1; i > 0; i -= 1) {
    const j = Math.floor(random() * (i + 1));
    [cards[i], cards[j]] = [cards[j] as UploadSpec, cards[i] as UploadSpec];
  }
  let next = 0;
  return () => cards[next++ % cards.length] as UploadSpec;
}
