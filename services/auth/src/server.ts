import { runService } from '@scs/common';
import { buildApp } from './app';
import { AuthConfig } from './config';

/**
 * Starts the auth service. When SCS_ADMIN_USERNAME and SCS_ADMIN_PASSWORD are both set, that admin
 * account is created (or updated) before the service listens; there is no default admin.
 */
runService('auth', AuthConfig, buildApp, async (app) => {
  const username = process.env.SCS_ADMIN_USERNAME;
  const password = process.env.SCS_ADMIN_PASSWORD;
  if (username && password) {
    const { user, created } = await app.authService.seedAdmin(username, password);
    app.log.info({ audit: { event: 'admin_seed', outcome: 'success', userId: user.id, created } }, 'audit admin_seed success');
  } else if (username || password) {
    app.log.warn('SCS_ADMIN_USERNAME and SCS_ADMIN_PASSWORD must both be set to seed the admin; skipped');
  }
});
