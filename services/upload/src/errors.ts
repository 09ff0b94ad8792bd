import createError from '@fastify/error';

/** Errors of the upload service: stable codes (the product contract) with the status they answer. */
export const NoFile = createError('NO_FILE', 'Attach a file in a multipart field named "file"', 400);
export const BadMultipart = createError('BAD_MULTIPART', '%s', 400);
export const InvalidFileName = createError(
  'INVALID_FILE_NAME',
  'The file name is not acceptable: use a plain name with an extension, without control characters or any of ; : * ? " < > |',
  400,
);
export const FileTooLarge = createError('FILE_TOO_LARGE', 'The file is larger than the %s limit', 413);
export const QuotaExceeded = createError('QUOTA_EXCEEDED', 'Your storage is full: delete some files first (quota %s)', 413);
export const UnsupportedFileType = createError('UNSUPPORTED_FILE_TYPE', '%s', 415);
export const FileNotFound = createError('FILE_NOT_FOUND', 'No such file', 404);
export const NothingUploaded = createError('NOTHING_UPLOADED', 'Nothing was uploaded for this file yet', 404);
