// Secure Cloud Storage browser UI: no framework, no inline script (strict CSP). The access token
// lives only in memory; the refresh cookie (HttpOnly, SameSite=Strict, Path=/auth) renews it.
'use strict';

const $ = (id) => document.getElementById(id);
const state = { token: null, user: null, limits: null, cursor: null, mode: 'login', movingTimer: null, movingChecks: 0 };

const MESSAGES = {
  FILE_TOO_LARGE: (m) => `Too large: ${m}`,
  QUOTA_EXCEEDED: () => 'Your storage is full: delete some files first.',
  UNSUPPORTED_FILE_TYPE: (m) => `Type not allowed: ${m}`,
  INVALID_FILE_NAME: (m) => m || 'This file name cannot be used: rename the file and try again.',
  UPLOAD_MISMATCH: (m) => m,
  TOO_MANY_ATTEMPTS: () => 'Too many failed attempts: wait a few minutes and try again.',
  RATE_LIMITED: () => 'Too many requests: wait a moment and try again.',
  STORAGE_UNAVAILABLE: () => 'Storage is temporarily unavailable: try again in a moment.',
  UNAUTHORIZED: () => 'Your session has expired: sign in again.',
};

/** Bytes in IEC units, the units the API and its messages use: 1536 -> "1.5 KiB", 104857600 -> "100 MiB". */
function formatBytes(n) {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** How many files are sent at once; the others wait their turn. */
const PARALLEL_UPLOADS = 3;

/** Turns an API error body into a sentence a person can act on. */
function explain(body, status) {
  if (body && body.code && MESSAGES[body.code]) return MESSAGES[body.code](body.message || '');
  if (status === 0) return 'The connection failed: check your network and try again.';
  return (body && body.message) || `Something went wrong (${status}).`;
}

function notice(text) {
  const el = $('notice');
  el.textContent = text || '';
  el.hidden = !text;
}

async function authCall(path) {
  const res = await fetch(`/auth/${path}`, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'x-requested-with': 'scs-ui' },
  });
  return res;
}

let refreshing = null;

/**
 * Silent refresh through the cookie, once for everything that waits on it (single flight): calls
 * made while a refresh is under way share it. Resolves 'ok' (a new access token is in state),
 * 'signed-out' (the session has ended) or 'unavailable' (the service could not answer now).
 */
function refresh() {
  refreshing ??= (async () => {
    try {
      const res = await authCall('refresh');
      if (res.status === 401 || res.status === 403) return 'signed-out';
      if (!res.ok) return 'unavailable';
      const body = await res.json();
      state.token = body.accessToken;
      state.user = body.user;
      return 'ok';
    } catch {
      return 'unavailable';
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

/** After a 401 for a request sent with `usedToken`: renews the token unless another call already did. */
async function renew(usedToken) {
  if (state.token && state.token !== usedToken) return 'ok';
  return refresh();
}

/** Calls the API with the access token; on 401 renews it (once for all waiting calls) and retries once. */
async function api(path, options = {}, retried = false) {
  const usedToken = state.token;
  const res = await fetch(path, {
    ...options,
    headers: { ...(options.headers || {}), authorization: `Bearer ${usedToken}` },
  });
  if (res.status !== 401) return res;
  const renewed = retried ? 'signed-out' : await renew(usedToken);
  if (renewed === 'ok') return api(path, options, true);
  if (renewed === 'unavailable') {
    notice('The service is temporarily unavailable: try again in a moment.');
    throw new Error('unavailable');
  }
  signedOut('Your session has expired: sign in again.');
  throw new Error('signed out');
}

async function readError(res) {
  try {
    return explain(await res.json(), res.status);
  } catch {
    return explain(null, res.status);
  }
}

// ---- sign in / register ---------------------------------------------------------------------

function showAuth(mode) {
  state.mode = mode;
  const login = mode === 'login';
  $('auth-title').textContent = login ? 'Sign in' : 'Create an account';
  $('auth-submit').textContent = login ? 'Sign in' : 'Create account';
  $('auth-switch').textContent = login ? 'No account yet? Create one' : 'Already have an account? Sign in';
  $('password').autocomplete = login ? 'current-password' : 'new-password';
  $('password-hint').hidden = login;
  $('auth-error').hidden = true;
}

function signedOut(message) {
  clearTimeout(state.movingTimer);
  if (resumableModule) resumableModule.then((r) => r.uploader.pauseAll());
  state.token = null;
  state.user = null;
  $('app').hidden = true;
  $('account').hidden = true;
  $('auth').hidden = false;
  showAuth('login');
  notice(message || '');
  $('username').focus();
}

async function signedIn() {
  $('auth').hidden = true;
  $('app').hidden = false;
  $('account').hidden = false;
  $('whoami').textContent = state.user.username;
  notice('');
  await loadUsage();
  await loadFiles(true);
  await (await resumable()).uploader.listUnfinished();
}

async function submitAuth(event) {
  event.preventDefault();
  const username = $('username').value.trim();
  const password = $('password').value;
  const error = $('auth-error');
  error.hidden = true;
  $('auth-submit').disabled = true;
  try {
    if (state.mode === 'register') {
      const reg = await fetch('/auth/register', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username, password }),
      });
      if (!reg.ok) throw new Error(await readError(reg));
    }
    const res = await fetch('/auth/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      credentials: 'same-origin',
      body: JSON.stringify({ username, password }),
    });
    if (!res.ok) throw new Error(await readError(res));
    const body = await res.json();
    state.token = body.accessToken;
    state.user = body.user;
    $('password').value = '';
    await signedIn();
  } catch (err) {
    error.textContent = err.message;
    error.hidden = false;
  } finally {
    $('auth-submit').disabled = false;
  }
}

async function logout() {
  await authCall('logout').catch(() => undefined);
  signedOut('You are signed out.');
}

// ---- files ---------------------------------------------------------------------------------

async function loadUsage() {
  const res = await api('/api/files/usage');
  if (!res.ok) return;
  state.limits = await res.json();
  const l = state.limits;
  $('usage').textContent = `${formatBytes(l.usedBytes)} of ${formatBytes(l.quotaBytes)} used`;
  const { threshold } = await resumable();
  $('limits').textContent =
    `Files above ${formatBytes(threshold)} are sent in parts: they can be paused, and resumed after a reload by picking ` +
    `the same file again. Allowed: ${l.allowedTypes.join(', ')}.`;
}

function fileRow(f) {
  const tr = document.createElement('tr');
  tr.dataset.id = f.id;
  const name = document.createElement('td');
  name.className = 'name';
  name.textContent = f.name;
  if (f.sensitive) {
    // The record says where the file is: "moving" until the mover has put it in the vault.
    const badge = document.createElement('span');
    const inVault = f.location === 'sensitive';
    badge.className = inVault ? 'badge' : 'badge moving';
    badge.textContent = inVault ? 'sensitive: in vault' : 'sensitive: moving to vault';
    name.append(badge);
  }
  const size = document.createElement('td');
  size.textContent = formatBytes(f.size);
  const date = document.createElement('td');
  const time = document.createElement('time');
  time.dateTime = f.createdAt;
  time.textContent = new Date(f.createdAt).toLocaleString();
  date.append(time);
  const actions = document.createElement('td');
  actions.className = 'actions';
  const dl = document.createElement('button');
  dl.type = 'button';
  dl.className = 'secondary';
  dl.textContent = 'Download';
  dl.setAttribute('aria-label', `Download ${f.name}`);
  dl.addEventListener('click', () => download(f));
  const del = document.createElement('button');
  del.type = 'button';
  del.className = 'danger';
  del.textContent = 'Delete';
  del.setAttribute('aria-label', `Delete ${f.name}`);
  del.addEventListener('click', () => remove(f, tr));
  actions.append(dl, del);
  tr.append(name, size, date, actions);
  return tr;
}

async function loadFiles(reset, recheck = false) {
  if (!recheck) state.movingChecks = 0;
  clearTimeout(state.movingTimer);
  if (reset) state.cursor = null;
  const query = new URLSearchParams({ limit: '50' });
  if (state.cursor) query.set('cursor', state.cursor);
  const res = await api(`/api/files?${query}`);
  if (!res.ok) {
    notice(await readError(res));
    return;
  }
  const page = await res.json();
  const tbody = $('files').querySelector('tbody');
  if (reset) tbody.replaceChildren();
  for (const f of page.items) tbody.append(fileRow(f));
  state.cursor = page.nextCursor;
  $('more').hidden = !page.nextCursor;
  const empty = tbody.children.length === 0;
  $('files').hidden = empty;
  $('empty').hidden = !empty;
  // A sensitive file reaches the vault within seconds: look again (for a minute) while one is moving.
  if (state.token && page.items.some((f) => f.sensitive && f.location !== 'sensitive') && state.movingChecks < 20) {
    state.movingChecks += 1;
    state.movingTimer = setTimeout(() => loadFiles(true, true), 3000);
  }
}

async function download(f) {
  const res = await api(`/api/files/${f.id}/download?redirect=false`);
  if (!res.ok) {
    notice(await readError(res));
    return;
  }
  const { url } = await res.json();
  // The presigned URL answers with Content-Disposition: attachment, so the page stays.
  const a = document.createElement('a');
  a.href = url;
  a.rel = 'noopener';
  document.body.append(a);
  a.click();
  a.remove();
}

async function remove(f, row) {
  const dialog = $('confirm');
  $('confirm-text').textContent = `"${f.name}" (${formatBytes(f.size)}) will be deleted.`;
  dialog.showModal();
  const answer = await new Promise((resolve) => dialog.addEventListener('close', () => resolve(dialog.returnValue), { once: true }));
  if (answer !== 'delete') return;
  const res = await api(`/api/files/${f.id}`, { method: 'DELETE' });
  if (!res.ok && res.status !== 404) {
    notice(await readError(res));
    return;
  }
  row.remove();
  notice(`Deleted ${f.name}.`);
  await loadUsage();
  if ($('files').querySelector('tbody').children.length === 0) await loadFiles(true);
}

// ---- uploads -------------------------------------------------------------------------------

/** One XHR with progress (fetch cannot report upload progress); resolves {status, body}. */
function send(item, url, form, headers) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    item.xhr = xhr;
    xhr.open('POST', url);
    for (const [k, v] of Object.entries(headers || {})) xhr.setRequestHeader(k, v);
    xhr.upload.addEventListener('progress', (e) => {
      if (e.lengthComputable) item.progress.value = e.loaded / e.total;
    });
    xhr.addEventListener('load', () => {
      let body = null;
      try {
        body = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        body = null;
      }
      resolve({ status: xhr.status, body });
    });
    xhr.addEventListener('error', () => resolve({ status: 0, body: null }));
    xhr.addEventListener('abort', () => resolve({ status: -1, body: null }));
    xhr.send(form);
  });
}

function uploadItem(file) {
  const li = document.createElement('li');
  const name = document.createElement('span');
  name.textContent = file.name;
  const cancel = document.createElement('button');
  cancel.type = 'button';
  cancel.className = 'secondary';
  cancel.textContent = 'Cancel';
  cancel.setAttribute('aria-label', `Cancel upload of ${file.name}`);
  const progress = document.createElement('progress');
  progress.max = 1;
  progress.value = 0;
  progress.setAttribute('aria-label', `Upload progress of ${file.name}`);
  const status = document.createElement('span');
  status.className = 'status';
  status.setAttribute('role', 'status');
  status.textContent = 'Waiting…';
  li.append(name, cancel, progress, status);
  $('uploads').append(li);
  const item = { li, progress, status, cancel, xhr: null, cancelled: false };
  // A resumable upload replaces onCancel with its own (which also cancels the upload at the service).
  item.onCancel = () => {
    item.cancelled = true;
    if (item.xhr) item.xhr.abort();
  };
  cancel.addEventListener('click', () => item.onCancel());
  return item;
}

async function directUpload(item, file, sensitive) {
  const pre = await api('/api/files/presign', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: file.name, size: file.size, contentType: file.type || 'application/octet-stream', sensitive }),
  });
  if (!pre.ok) return { status: pre.status, body: await pre.json().catch(() => null) };
  const target = await pre.json();
  const form = new FormData();
  for (const [k, v] of Object.entries(target.fields)) form.append(k, v);
  form.append('file', file);
  const sent = await send(item, target.url, form);
  if (sent.status < 200 || sent.status >= 300) return sent;
  const done = await api(`/api/files/${target.id}/complete`, { method: 'POST' });
  return { status: done.status, body: await done.json().catch(() => null) };
}

async function uploadOne(file, item, sensitive) {
  const limits = state.limits;
  let result;
  if (item.cancelled) {
    result = { status: -1, body: null };
  } else if (limits && file.size > limits.maxUploadBytes) {
    result = { status: 413, body: { code: 'FILE_TOO_LARGE', message: `the limit is ${formatBytes(limits.maxUploadBytes)} per file` } };
  } else if (limits && file.size > limits.directUploadAboveBytes) {
    item.status.textContent = 'Uploading…';
    result = await directUpload(item, file, sensitive);
  } else {
    item.status.textContent = 'Uploading…';
    const form = new FormData();
    form.append('sensitive', String(sensitive));
    form.append('file', file);
    const usedToken = state.token;
    result = await send(item, '/api/files', form, { authorization: `Bearer ${usedToken}` });
    if (result.status === 401 && (await renew(usedToken)) === 'ok') {
      result = await send(item, '/api/files', form, { authorization: `Bearer ${state.token}` });
    }
  }
  item.cancel.remove();
  if (result.status === -1 || item.cancelled) {
    item.status.textContent = 'Cancelled';
    item.progress.hidden = true;
  } else if (result.status >= 200 && result.status < 300) {
    item.progress.value = 1;
    item.status.textContent = 'Uploaded';
    await loadUsage();
    await loadFiles(true);
  } else {
    item.status.textContent = explain(result.body, result.status);
    item.status.classList.add('error');
    item.progress.hidden = true;
  }
}

/** Files waiting to be sent, in the order they were picked or dropped. */
const queue = [];
let sending = 0;

/** Sends the next waiting files, at most PARALLEL_UPLOADS at a time. */
function pump() {
  while (sending < PARALLEL_UPLOADS && queue.length > 0) {
    const next = queue.shift();
    sending += 1;
    uploadOne(next.file, next.item, next.sensitive)
      .catch((err) => {
        next.item.status.textContent = err.message;
        next.item.status.classList.add('error');
      })
      .finally(() => {
        sending -= 1;
        pump();
      });
  }
}

/**
 * The resumable uploader (public/resumable.js, an ES module): files above its threshold go to S3 in
 * parts that survive a dropped link or a reload. Loaded once, when first needed.
 */
let resumableModule = null;
function resumable() {
  resumableModule ??= import('/resumable.js').then((m) => ({
    threshold: m.RESUMABLE_ABOVE_BYTES,
    uploader: m.createResumable({
      api,
      readError,
      formatBytes,
      uploadItem,
      notice,
      userId: () => state.user && state.user.id,
      uploaded: async () => {
        await loadUsage();
        await loadFiles(true);
      },
    }),
  }));
  return resumableModule;
}

async function uploadAll(files) {
  // The "Sensitive" box counts as it was when the files were chosen.
  const sensitive = $('sensitive').checked;
  const { threshold, uploader } = await resumable();
  for (const file of files) {
    if (file.size > threshold) {
      uploader.upload(file, sensitive).catch((err) => notice(err.message));
    } else {
      queue.push({ file, item: uploadItem(file), sensitive });
    }
  }
  pump();
}

// ---- wiring --------------------------------------------------------------------------------

function wire() {
  $('auth-form').addEventListener('submit', submitAuth);
  $('auth-switch').addEventListener('click', () => showAuth(state.mode === 'login' ? 'register' : 'login'));
  $('logout').addEventListener('click', logout);
  $('more').addEventListener('click', () => loadFiles(false));
  $('picker').addEventListener('change', (e) => {
    uploadAll([...e.target.files]);
    e.target.value = '';
  });
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    uploadAll([...e.dataTransfer.files]);
  });
}

wire();
refresh().then((outcome) =>
  outcome === 'ok' ? signedIn() : signedOut(outcome === 'unavailable' ? 'The service is temporarily unavailable: reload in a moment.' : ''),
);
