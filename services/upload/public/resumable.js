// Resumable direct uploads in the browser (API.md, "Resumable direct uploads"): a large file goes
// straight to S3 as a multipart upload, part by part, through presigned part URLs. Each part's
// SHA-256 is computed here with Web Crypto from `file.slice()`, one part at a time (never the whole
// file in memory), and the part URL is signed for it, so S3 refuses a body that differs. The whole
// file's SHA-256 is computed meanwhile in a worker (sha256-worker.js) and given at complete: the
// service checks it against what S3 stored, and records it for files too large for S3 to hash
// (above 5 GiB). Loaded by
// app.js as an ES module (CSP: script-src 'self'); it calls the API only through app.js's `api`,
// which renews the access token on a 401 (one home for token refresh).
//
// What the page keeps in localStorage, per user: upload id -> {name, size, lastModified, sensitive}
// (no token, no URL, no secret), so that after a reload the same file, picked again, is recognised
// (same name, size and last-modified) and only the parts S3 does not hold yet are sent.

/** Files above this many bytes are sent as resumable uploads (64 MiB); smaller ones as before. */
export const RESUMABLE_ABOVE_BYTES = 64 * 1024 * 1024;
/** Part PUTs in flight at once, over all resumable uploads of the page. */
export const PARALLEL_PARTS = 3;
/** Attempts per part before the upload pauses itself (the user can resume it). */
export const MAX_ATTEMPTS = 6;
/** Backoff between attempts: full jitter over min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2^attempt), in ms. */
export const BACKOFF_BASE_MS = 500;
export const BACKOFF_CAP_MS = 20_000;

const STORE_PREFIX = 'scs.resumable.v1.';

/**
 * The delay before attempt `attempt` (1 = the first retry), in ms: a random value in
 * [0, min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2^attempt)) ("full jitter"), so that many parts that
 * failed together do not come back together.
 * @param {number} attempt
 * @param {() => number} [random] a source in [0, 1)
 * @returns {number}
 */
export function backoffMs(attempt, random = Math.random) {
  return Math.floor(random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt));
}

/**
 * The byte range of part `n` (1-based) of a file of `size` bytes cut in parts of `partSize` bytes:
 * `[start, end)`; the last part has the rest.
 * @param {number} size @param {number} partSize @param {number} n
 * @returns {{start: number, end: number}}
 */
export function partRange(size, partSize, n) {
  const start = (n - 1) * partSize;
  return { start, end: Math.min(size, start + partSize) };
}

/**
 * Whether a refused part PUT should be sent again with a fresh URL at once: S3 answers 403 when the
 * URL (or the temporary credentials that signed it) expired or is otherwise refused, and 400 with
 * an "expired" message for some expired signatures.
 * @param {number} status @param {string} body the answer's text (S3's XML error)
 */
export function needsFreshUrl(status, body) {
  return status === 403 || (status === 400 && /expired/i.test(body || ''));
}

/** Whether a part PUT's failure is worth another attempt after a pause: no answer, a timeout, throttling, a server error. */
function transient(status) {
  return status === 0 || status === 408 || status === 429 || status >= 500;
}

/** The SHA-256 of `buffer`, in base64 (what `x-amz-checksum-sha256` carries). */
async function sha256Base64(buffer) {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', buffer));
  let binary = '';
  for (const b of digest) binary += String.fromCharCode(b);
  return btoa(binary);
}

/**
 * The SHA-256 of the whole `file` (64 hex digits), computed in a worker (public/sha256-worker.js)
 * while the parts upload; the service compares it with what S3 stored (and records it for files too
 * large for S3 to hash). `onProgress(bytes)` reports the bytes hashed so far. `stop()` ends the work;
 * `digest` then never settles. `digest` resolves undefined when the worker failed: the service then
 * decides without it.
 * @param {File} file @param {(bytes: number) => void} onProgress
 * @returns {{digest: Promise<string | undefined>, stop: () => void}}
 */
function hashFile(file, onProgress) {
  let worker;
  try {
    worker = new Worker('/sha256-worker.js', { type: 'module' });
  } catch {
    return { digest: Promise.resolve(undefined), stop: () => undefined };
  }
  const digest = new Promise((resolve) => {
    worker.addEventListener('message', (event) => {
      const m = event.data;
      if (m.type === 'progress') onProgress(m.bytes);
      else {
        worker.terminate();
        resolve(m.type === 'done' ? m.sha256 : undefined);
      }
    });
    worker.addEventListener('error', () => {
      worker.terminate();
      resolve(undefined);
    });
  });
  worker.postMessage({ file });
  return { digest, stop: () => worker.terminate() };
}

/** A counting semaphore: `take()` resolves when one of `n` slots is free; `give()` frees one. */
function slots(n) {
  let free = n;
  const waiting = [];
  return {
    take: () =>
      new Promise((resolve) => {
        if (free > 0) {
          free -= 1;
          resolve();
        } else waiting.push(resolve);
      }),
    give: () => {
      const next = waiting.shift();
      if (next) next();
      else free += 1;
    },
  };
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function pause(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * One PUT of `body` to `url` with `headers`, through XHR for its upload progress. Resolves
 * {status, text} (status 0: no answer; -1: aborted through `signal`); never rejects.
 * @param {string} url @param {Record<string, string>} headers @param {ArrayBuffer} body
 * @param {AbortSignal} signal @param {(loaded: number) => void} onProgress bytes of this part sent so far
 */
function put(url, headers, body, signal, onProgress) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', url);
    for (const [k, v] of Object.entries(headers || {})) xhr.setRequestHeader(k, v);
    xhr.upload.addEventListener('progress', (e) => onProgress(e.loaded));
    xhr.addEventListener('load', () => resolve({ status: xhr.status, text: xhr.responseText }));
    xhr.addEventListener('error', () => resolve({ status: 0, text: '' }));
    xhr.addEventListener('abort', () => resolve({ status: -1, text: '' }));
    signal.addEventListener('abort', () => xhr.abort());
    xhr.send(body);
  });
}

/**
 * The resumable uploader of the page.
 * @param {object} deps what app.js lends it:
 * @param {(path: string, options?: RequestInit) => Promise<Response>} deps.api the API with the access token (renews it on 401)
 * @param {(res: Response) => Promise<string>} deps.readError an API error answer in words
 * @param {(n: number) => string} deps.formatBytes bytes in IEC units
 * @param {(file: {name: string}) => object} deps.uploadItem creates an item of the uploads list: {li, progress, status, cancel, onCancel}
 * @param {() => string | undefined} deps.userId the signed-in user's id (localStorage is kept per user)
 * @param {() => Promise<void>} deps.uploaded called after a file was completed (reload usage and list)
 * @param {(text: string) => void} deps.notice a message for the page's live region
 */
export function createResumable(deps) {
  const parts = slots(PARALLEL_PARTS);
  /** Uploads running or paused on this page, by upload id. */
  const active = new Map();

  // ---- what the page keeps across reloads ------------------------------------------------------

  const storeKey = () => `${STORE_PREFIX}${deps.userId() || 'anonymous'}`;
  /** @returns {Record<string, {name: string, size: number, lastModified: number, sensitive: boolean}>} */
  function kept() {
    try {
      return JSON.parse(localStorage.getItem(storeKey()) || '{}');
    } catch {
      return {};
    }
  }
  function keep(id, file, sensitive) {
    const all = kept();
    all[id] = { name: file.name, size: file.size, lastModified: file.lastModified, sensitive };
    localStorage.setItem(storeKey(), JSON.stringify(all));
  }
  function forget(id) {
    const all = kept();
    delete all[id];
    localStorage.setItem(storeKey(), JSON.stringify(all));
  }
  /** The kept upload started from this very file (same name, size and last-modified), if any. */
  function keptFor(file) {
    const entry = Object.entries(kept()).find(([, k]) => k.name === file.name && k.size === file.size && k.lastModified === file.lastModified);
    return entry ? entry[0] : undefined;
  }

  async function json(res) {
    return res.json().catch(() => null);
  }

  // ---- one upload -------------------------------------------------------------------------------

  /**
   * Runs (or resumes) upload `u` until it is complete, paused or cancelled. `u`: {id, file,
   * partSize, partCount, held: Set<number> (parts S3 holds), item, controller, state}.
   */
  async function run(u) {
    u.state = 'running';
    u.controller = new AbortController();
    const { signal } = u.controller;
    u.item.pause.textContent = 'Pause';
    u.item.pause.setAttribute('aria-label', `Pause upload of ${u.file.name}`);
    u.item.pause.disabled = false;
    setStatus(u, 'Uploading…');
    const missing = [];
    for (let n = 1; n <= u.partCount; n += 1) if (!u.held.has(n)) missing.push(n);
    u.inFlight = new Map();
    showProgress(u);
    let failure = null;
    const worker = async () => {
      while (missing.length > 0 && !signal.aborted && !failure) {
        const n = missing.shift();
        await parts.take();
        try {
          if (signal.aborted) {
            missing.unshift(n);
            return;
          }
          const outcome = await sendPart(u, n, signal);
          if (outcome === 'sent') {
            u.held.add(n);
            u.inFlight.delete(n);
            showProgress(u);
          } else if (outcome === 'aborted') {
            missing.unshift(n);
          } else {
            failure = outcome;
          }
        } finally {
          parts.give();
        }
      }
    };
    await Promise.all(Array.from({ length: PARALLEL_PARTS }, worker));
    u.inFlight.clear();
    if (u.state === 'cancelled') return;
    if (failure) {
      u.controller.abort();
      if (failure.stalled) {
        paused(u, 'The connection failed: the upload is paused. Resume it when you are back online.');
      } else {
        ended(u, failure.message, true);
      }
      return;
    }
    if (signal.aborted) {
      paused(u, 'Paused');
      return;
    }
    await complete(u);
  }

  /**
   * Sends part `n`: reads and hashes it, gets its URL, PUTs it; retries with backoff, with a fresh
   * URL when S3 refuses the old one. Resolves 'sent', 'aborted' (paused or cancelled), or
   * {message, stalled} (stalled: out of attempts on a failing link, the upload pauses).
   */
  async function sendPart(u, n, signal) {
    const { start, end } = partRange(u.file.size, u.partSize, n);
    const body = await u.file.slice(start, end).arrayBuffer();
    const checksum = await sha256Base64(body);
    let target = null;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt += 1) {
      if (signal.aborted) return 'aborted';
      if (attempt > 0) await pause(backoffMs(attempt), signal);
      if (signal.aborted) return 'aborted';
      if (!target || Date.parse(target.expiresAt) - Date.now() < 60_000) {
        let res;
        try {
          res = await deps.api(`/api/files/uploads/${u.id}/parts`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ parts: [{ partNumber: n, checksum }] }),
            signal,
          });
        } catch (err) {
          if (signal.aborted) return 'aborted';
          if (err && err.name === 'TypeError') continue; // no answer: try again after a pause
          return { message: err.message, stalled: false };
        }
        if (!res.ok) {
          if (transient(res.status)) continue;
          return { message: await deps.readError(res), stalled: false };
        }
        target = (await res.json()).parts[0];
      }
      const sent = await put(target.url, target.headers, body, signal, (loaded) => {
        u.inFlight.set(n, loaded);
        showProgress(u);
      });
      if (sent.status >= 200 && sent.status < 300) return 'sent';
      u.inFlight.delete(n);
      if (sent.status === -1) return 'aborted';
      if (needsFreshUrl(sent.status, sent.text)) {
        target = null;
        continue;
      }
      if (!transient(sent.status)) return { message: `The storage refused part ${n} (${sent.status}).`, stalled: false };
    }
    return { message: 'The connection failed.', stalled: true };
  }

  async function complete(u) {
    u.item.pause.disabled = true;
    u.waitingForDigest = true;
    setStatus(u, digestStatus(u));
    const checksum = await u.hash.digest;
    u.waitingForDigest = false;
    setStatus(u, 'Checking the file…');
    const res = await deps.api(`/api/files/uploads/${u.id}/complete`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(checksum ? { checksum } : {}),
    });
    // Cancelled meanwhile: the cancel won, and the item already says so.
    if (u.state === 'cancelled') return undefined;
    const body = res.ok ? null : await json(res);
    if (res.status === 400 && body && body.code === 'UPLOAD_INCOMPLETE' && !u.recheckedOnce) {
      // S3 lacks a part we thought sent: ask it what it holds, and send the rest.
      u.recheckedOnce = true;
      const described = await describe(u.id);
      if (described) {
        u.held = described.held;
        return run(u);
      }
    }
    if (res.ok || res.status === 409) {
      forget(u.id);
      u.item.progress.value = 1;
      ended(u, 'Uploaded', false);
      await deps.uploaded();
      return undefined;
    }
    if (res.status !== 400 || !body || body.code !== 'UPLOAD_INCOMPLETE') forget(u.id);
    ended(u, explainBody(body, res.status), true);
    return undefined;
  }

  function explainBody(body, status) {
    return (body && body.message) || `Something went wrong (${status}).`;
  }

  /** The upload as the service describes it now: {partSize, partCount, held: Set of part numbers S3 holds at their size}; undefined on 404. */
  async function describe(id) {
    const res = await deps.api(`/api/files/uploads/${id}`);
    if (!res.ok) return undefined;
    const d = await res.json();
    const held = new Set();
    for (const p of d.parts) {
      const { start, end } = partRange(d.size, d.partSize, p.partNumber);
      if (p.size === end - start) held.add(p.partNumber);
    }
    return { ...d, held };
  }

  // ---- the item in the list of uploads ------------------------------------------------------------

  /** What the item says while the parts are sent and the file's checksum is still being computed. */
  function digestStatus(u) {
    const percent = Math.floor((100 * u.hashed) / Math.max(1, u.file.size));
    return `Computing the file's checksum… ${percent} %`;
  }

  function setStatus(u, text) {
    u.item.status.textContent = text;
  }

  function showProgress(u) {
    let bytes = 0;
    for (const n of u.held) {
      const { start, end } = partRange(u.file.size, u.partSize, n);
      bytes += end - start;
    }
    for (const loaded of u.inFlight.values()) bytes += loaded;
    u.item.progress.value = Math.min(1, bytes / u.file.size);
    u.item.progress.setAttribute('aria-valuetext', `${u.held.size} of ${u.partCount} parts sent`);
    u.item.parts.textContent = `${u.held.size} of ${u.partCount} parts`;
  }

  function paused(u, text) {
    u.state = 'paused';
    u.item.pause.textContent = 'Resume';
    u.item.pause.setAttribute('aria-label', `Resume upload of ${u.file.name}`);
    u.item.pause.disabled = false;
    setStatus(u, text);
  }

  function ended(u, text, failed) {
    u.state = failed ? 'failed' : 'done';
    u.hash.stop();
    active.delete(u.id);
    u.item.pause.remove();
    u.item.cancel.remove();
    setStatus(u, text);
    if (failed) {
      u.item.status.classList.add('error');
      u.item.progress.hidden = true;
    }
  }

  async function togglePause(u) {
    if (u.state === 'running') {
      u.item.pause.disabled = true;
      u.controller.abort();
      return;
    }
    if (u.state !== 'paused') return;
    u.item.pause.disabled = true;
    setStatus(u, 'Resuming…');
    // S3 is the truth: what it holds now (a part whose answer was lost may be there).
    const described = await describe(u.id);
    if (!described) {
      forget(u.id);
      ended(u, 'This upload has expired or was cancelled: start it again.', true);
      return;
    }
    u.held = described.held;
    await run(u);
  }

  async function cancel(u) {
    const wasRunning = u.state === 'running';
    u.state = 'cancelled';
    if (u.controller) u.controller.abort();
    u.item.pause.disabled = true;
    u.item.cancel.disabled = true;
    setStatus(u, 'Cancelling…');
    const res = await deps.api(`/api/files/uploads/${u.id}`, { method: 'DELETE' });
    if (!res.ok && res.status !== 404) {
      u.state = wasRunning ? 'paused' : u.state;
      paused(u, await deps.readError(res));
      u.item.cancel.disabled = false;
      return;
    }
    forget(u.id);
    ended(u, 'Cancelled', false);
    u.item.progress.hidden = true;
    await deps.uploaded();
  }

  function attach(u) {
    // The file's SHA-256 is computed while its parts upload (after a reload, from the start again).
    u.hashed = 0;
    u.hash = hashFile(u.file, (bytes) => {
      u.hashed = bytes;
      if (u.waitingForDigest) setStatus(u, digestStatus(u));
    });
    const pauseButton = document.createElement('button');
    pauseButton.type = 'button';
    pauseButton.className = 'secondary';
    u.item.pause = pauseButton;
    const partsText = document.createElement('span');
    partsText.className = 'parts hint';
    u.item.parts = partsText;
    const actions = document.createElement('span');
    actions.className = 'actions';
    u.item.cancel.replaceWith(actions);
    actions.append(pauseButton, u.item.cancel);
    u.item.status.after(partsText);
    pauseButton.addEventListener('click', () => togglePause(u));
    u.item.onCancel = () => cancel(u);
    active.set(u.id, u);
  }

  // ---- entry points -----------------------------------------------------------------------------

  /**
   * Uploads `file` (above RESUMABLE_ABOVE_BYTES) as a resumable upload, or resumes the one this page
   * started from the same file (name, size, last-modified) if the service still has it. Resolves
   * when the upload has completed, failed, paused or been cancelled.
   * @param {File} file @param {boolean} sensitive
   */
  async function upload(file, sensitive) {
    const keptId = keptFor(file);
    if (keptId && active.has(keptId)) {
      deps.notice(`${file.name} is already being uploaded.`);
      return;
    }
    const item = deps.uploadItem(file);
    if (keptId) {
      document.getElementById(`unfinished-${keptId}`)?.remove();
      updateUnfinishedHeading();
      item.status.textContent = 'Resuming…';
      const described = await describe(keptId);
      if (described) {
        const u = { id: keptId, file, partSize: described.partSize, partCount: described.partCount, held: described.held, item };
        attach(u);
        await run(u);
        return;
      }
      forget(keptId);
    }
    item.status.textContent = 'Starting…';
    const res = await deps.api('/api/files/uploads', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: file.name, size: file.size, contentType: file.type || 'application/octet-stream', sensitive }),
    });
    if (!res.ok) {
      item.cancel.remove();
      item.progress.hidden = true;
      item.status.textContent = await deps.readError(res);
      item.status.classList.add('error');
      return;
    }
    const created = await res.json();
    keep(created.id, file, sensitive);
    const u = { id: created.id, file, partSize: created.partSize, partCount: created.partCount, held: new Set(), item };
    attach(u);
    await run(u);
  }

  function updateUnfinishedHeading() {
    const list = document.getElementById('unfinished');
    document.getElementById('unfinished-section').hidden = list.children.length === 0;
  }

  /**
   * Lists the caller's unfinished uploads that no part of this page is running: those this browser
   * started can be resumed by picking the same file again (any file picker of the page); the others
   * (started elsewhere) can be cancelled. Forgets kept entries the service no longer has.
   */
  async function listUnfinished() {
    const res = await deps.api('/api/files/uploads');
    if (!res.ok) return;
    const { items } = await res.json();
    const mine = kept();
    const live = new Set(items.map((i) => i.id));
    for (const id of Object.keys(mine)) if (!live.has(id)) forget(id);
    const list = document.getElementById('unfinished');
    list.replaceChildren();
    for (const i of items) {
      if (active.has(i.id)) continue;
      list.append(unfinishedRow(i, mine[i.id]));
    }
    updateUnfinishedHeading();
  }

  function unfinishedRow(i, here) {
    const li = document.createElement('li');
    li.id = `unfinished-${i.id}`;
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = `${i.name} (${deps.formatBytes(i.size)})`;
    const hint = document.createElement('span');
    hint.className = 'hint';
    const until = new Date(i.expiresAt).toLocaleString();
    hint.textContent = here
      ? `Pick the same file again to resume it (kept until ${until}).`
      : `Started in another browser: it can be resumed there (kept until ${until}).`;
    const actions = document.createElement('span');
    actions.className = 'actions';
    if (here) {
      const input = document.createElement('input');
      input.type = 'file';
      input.className = 'visually-hidden';
      input.tabIndex = -1;
      input.setAttribute('aria-hidden', 'true');
      const choose = document.createElement('button');
      choose.type = 'button';
      choose.textContent = 'Choose file…';
      choose.setAttribute('aria-label', `Choose ${i.name} again to resume its upload`);
      choose.addEventListener('click', () => input.click());
      input.addEventListener('change', () => {
        const file = input.files[0];
        input.value = '';
        if (!file) return;
        if (keptFor(file) !== i.id) {
          deps.notice(`That is not the same file as ${i.name} (its name, size or date differ).`);
          return;
        }
        upload(file, here.sensitive);
      });
      actions.append(input, choose);
    }
    const cancelButton = document.createElement('button');
    cancelButton.type = 'button';
    cancelButton.className = 'danger';
    cancelButton.textContent = 'Cancel upload';
    cancelButton.setAttribute('aria-label', `Cancel the unfinished upload of ${i.name}`);
    cancelButton.addEventListener('click', async () => {
      cancelButton.disabled = true;
      const res = await deps.api(`/api/files/uploads/${i.id}`, { method: 'DELETE' });
      if (!res.ok && res.status !== 404) {
        deps.notice(await deps.readError(res));
        cancelButton.disabled = false;
        return;
      }
      forget(i.id);
      li.remove();
      updateUnfinishedHeading();
      deps.notice(`Cancelled the upload of ${i.name}.`);
      await deps.uploaded();
    });
    actions.append(cancelButton);
    li.append(name, actions, hint);
    return li;
  }

  /** Pauses every running upload (on sign-out): each stays resumable after the next sign-in. */
  function pauseAll() {
    for (const u of active.values()) {
      if (u.controller) u.controller.abort();
      u.hash.stop();
    }
    active.clear();
    document.getElementById('unfinished').replaceChildren();
    updateUnfinishedHeading();
  }

  return { upload, listUnfinished, pauseAll };
}
