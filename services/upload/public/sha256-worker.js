// The SHA-256 of a whole file, computed in a worker so the page stays responsive. Web Crypto has no
// incremental digest (it would need the whole file in memory), so the bytes go through
// @noble/hashes' SHA-256 (served by the upload service under /vendor/noble-hashes/), read from
// `file.stream()` a chunk at a time.
//
// Message in: {file: File}. Messages out: {type: 'progress', bytes} every PROGRESS_BYTES or so,
// then {type: 'done', sha256} (64 hex digits) or {type: 'error', message}.
import { sha256 } from '/vendor/noble-hashes/sha2.js';

/** How often progress is reported, in bytes hashed (32 MiB). */
const PROGRESS_BYTES = 32 * 1024 * 1024;

self.addEventListener('message', async (event) => {
  const { file } = event.data;
  try {
    const hash = sha256.create();
    const reader = file.stream().getReader();
    let bytes = 0;
    let reported = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      hash.update(value);
      bytes += value.byteLength;
      if (bytes - reported >= PROGRESS_BYTES) {
        reported = bytes;
        self.postMessage({ type: 'progress', bytes });
      }
    }
    let hex = '';
    for (const b of hash.digest()) hex += b.toString(16).padStart(2, '0');
    self.postMessage({ type: 'done', sha256: hex });
  } catch (err) {
    self.postMessage({ type: 'error', message: (err && err.message) || String(err) });
  }
});
