import { runService } from '@scs/common';
import { buildApp } from './app';
import { AuthConfig } from './config';

/**
 * Starts the auth service. When SCS_ADMIN_USERNAME and SCS_ADMIN_PASSWORD are both set, that admin
 * account is seeded before the service listens (see AuthService.seedAdmin: an existing non-admin
 * account of that name is not promoted unless SCS_ADMIN_PROMOTE_EXISTING=true, and start-up fails
 * saying so); there is no default admin.
 */
runService('auth', AuthConfig, buildApp, async (app) => {
  const username = process.env.SCS_ADMIN_USERNAME;
  const password = process.env.SCS_ADMIN_PASSWORD;
  if (username && password) {
    const { user, outcome } = await app.authService.seedAdmin(username, password);
    app.log.info({ audit: { event: 'admin_seed', outcome: 'success', userId: user.id, result: outcome } }, `audit admin_seed ${outcome}`);
  } else if (username || password) {
    app.log.warn('SCS_ADMIN_USERNAME and SCS_ADMIN_PASSWORD must both be set to seed the admin; skipped');
  }
});
