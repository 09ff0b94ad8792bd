import createError from '@fastify/error';

/** Errors of the upload service: stable codes (the product contract) with the status they answer. */
export const NoFile = createError('NO_FILE', 'Attach a file in a multipart field named "file"', 400);
export const BadMultipart = createError('BAD_MULTIPART', '%s', 400);
/** The message says what is wrong with the name and how to fix it. */
export const InvalidFileName = createError('INVALID_FILE_NAME', '%s', 400);
export const FileTooLarge = createError('FILE_TOO_LARGE', 'The file is larger than the %s limit', 413);
export const QuotaExceeded = createError('QUOTA_EXCEEDED', 'Your storage is full: delete some files first (quota %s)', 413);
/** The user holds QUOTA_FILES files (stored, being uploaded, or pending direct uploads). */
export const FileCountExceeded = createError(
  'FILE_COUNT_EXCEEDED',
  'You have as many files as allowed (%s, uploads under way included): delete some files first',
  413,
);
export const UnsupportedFileType = createError('UNSUPPORTED_FILE_TYPE', '%s', 415);
export const FileNotFound = createError('FILE_NOT_FOUND', 'No such file', 404);
export const NothingUploaded = createError('NOTHING_UPLOADED', 'Nothing was uploaded for this file yet', 404);
/** A direct upload that S3 stored differently from the form it was issued (size, type, disposition, metadata). */
export const UploadMismatch = createError('UPLOAD_MISMATCH', '%s', 400);
/** Another `/complete` of the same upload is verifying it right now. */
export const UploadInProgress = createError(
  'UPLOAD_IN_PROGRESS',
  'Another request is verifying this upload right now: ask again in a moment',
  409,
);
/** The client closed the request before the file was complete (nobody reads this answer). */
export const RequestAborted = createError('REQUEST_ABORTED', 'The request was closed before the file was complete', 400);
/** A resumable upload that is not the caller's, never existed, or is over (completed, aborted, expired). */
export const UploadNotFound = createError('UPLOAD_NOT_FOUND', 'No such upload: it may have been completed, cancelled or expired', 404);
/** A part number outside the upload's parts, or a part checksum that is not a base64 SHA-256. */
export const InvalidPart = createError('INVALID_PART', '%s', 400);
/** `/complete` of a resumable upload whose parts S3 does not all hold, or not at their sizes. */
export const UploadIncomplete = createError('UPLOAD_INCOMPLETE', '%s', 400);
/** `/complete` of a resumable upload that is a file already (the answer of a repeat). */
export const AlreadyCompleted = createError('ALREADY_COMPLETED', 'This upload was completed already: the file is %s', 409);
/** Input the route schema cannot judge alone (a resumable upload too large for S3 to hash, completed without its declared SHA-256). */
export const ChecksumRequired = createError('VALIDATION_FAILED', '%s', 400);
