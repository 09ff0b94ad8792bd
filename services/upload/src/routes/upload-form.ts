import type { Multipart, MultipartFile } from '@fastify/multipart';
import type { FastifyRequest } from 'fastify';
import { BadMultipart, FileTooLarge, NoFile, RequestAborted } from '../errors';
import { humanBytes } from '../files/quota';
import type { UploadForm } from '../files/uploads';

/** Errors @fastify/multipart raises with a code of its own, as the contract's 400 BAD_MULTIPART (FU-02, FU-13). */
const MULTIPART_LIMITS: Record<string, string> = {
  FST_PARTS_LIMIT: 'Too many parts in the form',
  FST_FILES_LIMIT: 'Send one file per request',
  FST_FIELDS_LIMIT: 'Too many fields in the form',
  FST_PROTO_VIOLATION: 'Field names like __proto__ are not allowed',
  FST_INVALID_MULTIPART_CONTENT_TYPE: 'Send the file as multipart/form-data',
  FST_INVALID_JSON_FIELD_ERROR: 'A form field is malformed',
};

/**
 * What the parser under @fastify/multipart (busboy) says of a malformed body. It gives these
 * errors no code, only a message, so they are told apart by it here, at the one place that reads
 * the parser: "Unexpected end of multipart data", "Part terminated early ...", "Multipart:
 * Boundary not found" (and "Unexpected end of form", "Malformed part header" of other busboy
 * versions).
 */
const MALFORMED = /Unexpected end of (form|multipart data)|Malformed part header|Multipart: Boundary not found|Part terminated early/i;

/**
 * The domain error for an error the multipart parser raised: 400 BAD_MULTIPART (a limit of the
 * form, a malformed body), 413 FILE_TOO_LARGE (the file passed `maxBytes`), 400 REQUEST_ABORTED
 * (the body stopped: the client went away); any other error (ours, S3's) is returned as it is.
 */
function parserError(err: unknown, maxBytes: number): unknown {
  const code = (err as { code?: string } | null)?.code;
  const limit = code === undefined ? undefined : MULTIPART_LIMITS[code];
  if (limit) return new BadMultipart(limit, { cause: err });
  if (code === 'FST_REQ_FILE_TOO_LARGE') return new FileTooLarge(humanBytes(maxBytes), { cause: err });
  if (code === 'FST_MP_PREMATURE_CLOSE') return new RequestAborted({ cause: err });
  if (err instanceof Error && MALFORMED.test(err.message)) return new BadMultipart('The multipart body is malformed', { cause: err });
  return err;
}

/** The parser's limits (@fastify/multipart's `parts({ limits })`); `fileSize` in bytes. */
export type MultipartLimits = NonNullable<NonNullable<Parameters<FastifyRequest['parts']>[0]>['limits']>;

/**
 * The upload form of a request, read on demand by the service (after it reserved the quota): an
 * optional `sensitive` field, then the `file` part, then nothing else. The multipart parser is
 * built here and read only here: every error it raises, from reading the form (`file`, `end`) or
 * from the file's bytes (`IncomingFile.failure`), becomes a domain error (see `parserError`), so
 * the route has nothing to translate. `signal` aborts when the client goes away first, or the
 * body arrives below the minimum rate (408 REQUEST_TOO_SLOW). Throws 400 BAD_MULTIPART at once for
 * a body that is not multipart.
 */
export function uploadForm(request: FastifyRequest, limits: MultipartLimits, sensitiveByDefault: boolean): UploadForm {
  const maxBytes = limits.fileSize ?? Number.POSITIVE_INFINITY;
  const length = Number(request.headers['content-length']);
  if (!request.isMultipart()) throw new BadMultipart(MULTIPART_LIMITS.FST_INVALID_MULTIPART_CONTENT_TYPE as string);
  // The body is read only once the service asks for the file (after the quota was reserved).
  let iterator: AsyncIterator<Multipart> | undefined;
  const next = () => (iterator ??= request.parts({ limits })[Symbol.asyncIterator]()).next();
  const gone = new AbortController();
  request.raw.once('close', () => {
    if (!request.raw.readableEnded) gone.abort(new RequestAborted());
  });
  // A body arriving below the minimum rate stops the upload wherever it is (408 REQUEST_TOO_SLOW).
  const signal = AbortSignal.any([gone.signal, request.bodyTooSlow]);
  const stopped = new Promise<never>((_resolve, reject) => {
    const stop = () => reject(signal.reason);
    if (signal.aborted) stop();
    else signal.addEventListener('abort', stop, { once: true });
  });
  stopped.catch(() => undefined);
  const nextPart = async () => {
    try {
      return await Promise.race([next(), stopped]);
    } catch (err) {
      throw parserError(err, maxBytes);
    }
  };
  let sensitive = sensitiveByDefault;
  return {
    declaredBytes: Number.isFinite(length) ? length : undefined,
    signal,
    async file() {
      for (;;) {
        const { done, value: part } = await nextPart();
        if (done) throw new NoFile();
        if (part.type === 'field') {
          if (part.fieldname !== 'sensitive') throw new BadMultipart(`Unexpected field "${part.fieldname}"`);
          if (part.value !== 'true' && part.value !== 'false') throw new BadMultipart('"sensitive" must be true or false');
          sensitive = part.value === 'true';
          continue;
        }
        const file = part as MultipartFile;
        if (file.fieldname !== 'file') throw new BadMultipart(`The file must be in a field named "file", not "${file.fieldname}"`);
        // Browsers send a name's double quotes as %22 (HTML's multipart/form-data encoding): the
        // only escape they use that a name needs back; everything else is kept as sent.
        return { filename: file.filename.replaceAll('%22', '"'), stream: file.file, sensitive, failure: (err) => parserError(err, maxBytes) };
      }
    },
    async end() {
      const { done, value: part } = await nextPart();
      if (!done) {
        const what = (part as Multipart).type === 'field' ? `field "${part.fieldname}"` : 'file';
        throw new BadMultipart(`Unexpected ${what} after the file: send one file per request`);
      }
    },
  };
}
