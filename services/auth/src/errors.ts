import createError from '@fastify/error';

/** Errors of the auth service: stable codes (the product contract) with the status they answer. */
export const InvalidUsername = createError(
  'INVALID_USERNAME',
  'Usernames are 3 to 32 characters of a-z, 0-9, ".", "_" or "-", starting with a letter or digit',
  400,
);
export const WeakPassword = createError('WEAK_PASSWORD', '%s', 400);
export const UsernameTaken = createError('USERNAME_TAKEN', 'That username is taken: choose another', 409);
export const InvalidCredentials = createError('INVALID_CREDENTIALS', 'Wrong username or password', 401);
export const TooManyAttempts = createError(
  'TOO_MANY_ATTEMPTS',
  'Too many failed sign-in attempts: wait a few minutes and try again',
  429,
);
/** The same code as TooManyAttempts: sign-ins of this account or address are already being checked. */
export const SignInsInProgress = createError(
  'TOO_MANY_ATTEMPTS',
  'Sign-ins for this account or from this address are already in progress: try again in a moment',
  429,
);
export const InvalidRefreshToken = createError('INVALID_REFRESH_TOKEN', 'Your session has ended: sign in again', 401);
export const CrossSiteRequest = createError('CROSS_SITE_REQUEST', 'This request must come from the application itself', 403);
