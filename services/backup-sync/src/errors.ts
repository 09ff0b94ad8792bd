import createError from '@fastify/error';

/** Errors of the backup API: stable codes with the status they answer. */
export const BackupNotFound = createError('BACKUP_NOT_FOUND', 'There is no backup of that file', 404);
