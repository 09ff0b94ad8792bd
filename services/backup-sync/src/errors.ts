import createError from '@fastify/error';

/** Errors of the backup API: stable codes with the status they answer. */
export const BackupNotFound = createError('BACKUP_NOT_FOUND', 'There is no backup of that file', 404);
/** The owner's account no longer exists: a restore would recreate a file for nobody. */
export const AccountNotFound = createError('ACCOUNT_NOT_FOUND', "The file's owner no longer has an account: nothing was restored", 404);
/** The owner is deleting the file right now; the restore did nothing (retry once the delete is done). */
export const DeleteInProgress = createError('DELETE_IN_PROGRESS', "The file's owner is deleting it right now: nothing was restored; try again in a moment", 409);
