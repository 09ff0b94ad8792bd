import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { addressKey, errorResponses, extraRateLimit, type PublicJwk, Unauthorized } from '@scs/common';
import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Counter } from 'prom-client';
import type { AuthConfig } from '../config';
import { CrossSiteRequest } from '../errors';
import type { AuthService, IssuedSession, Outcome } from '../services/auth-service';

export const REFRESH_COOKIE = 'scs_refresh';
/** The device cookie (OWASP device cookies): a random token naming a device the account signed in from. */
export const DEVICE_COOKIE = 'scs_device';

const Credentials = Type.Object(
  {
    username: Type.String({ minLength: 1, maxLength: 256, description: '3-32 characters of a-z 0-9 . _ -, case-insensitive' }),
    password: Type.String({ minLength: 1, maxLength: 4096, description: '12 to 256 characters' }),
  },
  { additionalProperties: false },
);

const Role = Type.Union([Type.Literal('user'), Type.Literal('admin')]);
const PublicUser = Type.Object({ id: Type.String({ format: 'uuid' }), username: Type.String(), role: Role });
const Me = Type.Object({ ...PublicUser.properties, createdAt: Type.String({ format: 'date-time' }) });
const Session = Type.Object({
  accessToken: Type.String({ description: 'ES256 JWT, valid for expiresIn seconds' }),
  tokenType: Type.Literal('Bearer'),
  expiresIn: Type.Integer(),
  user: PublicUser,
});
const Jwk = Type.Object({
  kty: Type.String(),
  crv: Type.String(),
  x: Type.String(),
  y: Type.String(),
  kid: Type.String(),
  alg: Type.String(),
  use: Type.String(),
});

export interface AuthRoutesOptions {
  service: AuthService;
  config: AuthConfig;
  jwks: () => { keys: PublicJwk[] };
  loginCounter: Counter<'outcome'>;
}

/**
 * Cookie-authenticated requests are refused when a browser says they come from another site
 * (FU-12). Browsers always send Sec-Fetch-Site (and Origin on POST); requests with neither come
 * from programs, which cannot be made to carry a victim's cookie. SameSite=Strict is the first line.
 * The host compared with Origin is Fastify's `request.host`: X-Forwarded-Host only when the peer is
 * one of TRUSTED_PROXIES (AU-06), the Host header otherwise.
 */
function assertSameSite(request: FastifyRequest, allowedOrigins: ReadonlySet<string>): void {
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') throw new CrossSiteRequest();
  const origin = request.headers.origin;
  if (origin === undefined) return;
  const host = request.host;
  const sameHost = [`http://${host}`, `https://${host}`].includes(origin);
  if (!sameHost && !allowedOrigins.has(origin)) throw new CrossSiteRequest();
}

export const authRoutes: FastifyPluginAsyncTypebox<AuthRoutesOptions> = async (app, opts) => {
  const { service, config } = opts;
  const allowedOrigins = new Set(
    config.ALLOWED_ORIGINS.split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );
  const cookieOptions = {
    httpOnly: true,
    sameSite: 'strict' as const,
    path: '/auth',
    secure: config.COOKIE_SECURE,
  };

  const sendSession = (reply: FastifyReply, session: IssuedSession) => {
    reply.setCookie(REFRESH_COOKIE, session.refreshToken, { ...cookieOptions, maxAge: session.refreshMaxAgeSeconds });
    reply.header('cache-control', 'no-store');
    const { accessToken, tokenType, expiresIn, user } = session;
    return { accessToken, tokenType, expiresIn, user };
  };

  // A second, hourly bound on registrations per address (the route's own limit is per minute),
  // counted where the route's is (shared by every instance when the store is).
  const registrationsPerHour = extraRateLimit(app, {
    max: config.REGISTER_RATE_LIMIT_PER_HOUR,
    timeWindow: 3_600_000,
    keyGenerator: (request) => `hour#${addressKey(request.ip)}`,
  });

  app.post(
    '/register',
    {
      config: { public: true, rateLimit: { max: config.REGISTER_RATE_LIMIT_PER_MINUTE, timeWindow: 60_000 } },
      onRequest: async (request) => registrationsPerHour(request),
      schema: {
        summary: 'Create an account',
        tags: ['auth'],
        body: Credentials,
        response: { 201: PublicUser, ...errorResponses(400, 409, 429, 503) },
      },
    },
    async (request, reply) => {
      try {
        const user = await service.register(request.body.username, request.body.password, request.ip);
        request.audit('register', 'success', { userId: user.id, username: user.username });
        return reply.status(201).send(user);
      } catch (err) {
        request.audit('register', 'failure', { reason: (err as { code?: string }).code ?? 'error' });
        throw err;
      }
    },
  );

  app.post(
    '/login',
    {
      config: { public: true },
      schema: {
        summary: 'Sign in: returns an access token and sets the refresh cookie',
        tags: ['auth'],
        body: Credentials,
        response: { 200: Session, ...errorResponses(400, 401, 429, 503) },
      },
    },
    async (request, reply) => {
      const outcome: Outcome = {};
      try {
        const session = await service.login(request.body.username, request.body.password, request.ip, outcome, request.cookies[DEVICE_COOKIE]);
        request.audit('login', 'success', { userId: outcome.userId, reason: outcome.reason });
        opts.loginCounter.inc({ outcome: 'success' });
        const body = sendSession(reply, session);
        if (session.device) reply.setCookie(DEVICE_COOKIE, session.device.token, { ...cookieOptions, maxAge: session.device.maxAgeSeconds });
        return body;
      } catch (err) {
        const throttled = outcome.reason === 'throttled' || outcome.reason === 'in_progress';
        request.audit(throttled ? 'login_throttled' : 'login', throttled ? 'denied' : 'failure', {
          userId: outcome.userId,
          reason: outcome.reason ?? (err as { code?: string }).code,
        });
        opts.loginCounter.inc({ outcome: outcome.reason ?? 'error' });
        throw err;
      }
    },
  );

  // Refresh and logout take no body. Whatever a client sends with them (an empty JSON body, `{}`,
  // a form) is read within a small limit and ignored, so they work the same with or without one.
  await app.register(async (bodiless) => {
    bodiless.removeAllContentTypeParsers();
    bodiless.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 1024 }, (_request, _body, done) => done(null, undefined));

    bodiless.post(
      '/refresh',
      {
        config: { public: true, rateLimit: { max: config.REFRESH_RATE_LIMIT_PER_MINUTE, timeWindow: 60_000 } },
        schema: {
          summary: 'Exchange the refresh cookie for a new access token (the cookie is rotated)',
          description:
            'Parallel refreshes with the same cookie (two tabs) all answer 200 with the same new cookie; a cookie used ' +
            'again after that (reuse) ends the session. A failed refresh never changes the cookie.',
          tags: ['auth'],
          response: { 200: Session, ...errorResponses(401, 403, 413, 429, 503) },
        },
      },
      async (request, reply) => {
        assertSameSite(request, allowedOrigins);
        const outcome: Outcome = {};
        try {
          const session = await service.refresh(request.cookies[REFRESH_COOKIE], outcome);
          request.audit('refresh', 'success', { userId: outcome.userId, reason: outcome.reason });
          return sendSession(reply, session);
        } catch (err) {
          if (outcome.reason === 'reuse') request.audit('refresh_token_reuse', 'denied', { userId: outcome.userId, reason: 'family_revoked' });
          else request.audit('refresh', 'failure', { userId: outcome.userId, reason: outcome.reason });
          // The cookie is left alone: it may already hold a newer token (a parallel refresh, a new sign-in).
          throw err;
        }
      },
    );

    bodiless.post(
      '/logout',
      {
        config: { public: true },
        schema: {
          summary: 'End the session: revokes the refresh token and clears the cookie',
          tags: ['auth'],
          response: { 204: Type.Null(), ...errorResponses(403, 413, 503) },
        },
      },
      async (request, reply) => {
        assertSameSite(request, allowedOrigins);
        const outcome: Outcome = {};
        await service.logout(request.cookies[REFRESH_COOKIE], outcome);
        request.audit('logout', 'success', { userId: outcome.userId });
        reply.clearCookie(REFRESH_COOKIE, cookieOptions);
        return reply.status(204).send(null);
      },
    );
  });

  app.get(
    '/me',
    {
      schema: {
        summary: 'The signed-in account',
        tags: ['auth'],
        security: [{ bearerAuth: [] }],
        response: { 200: Me, ...errorResponses(401, 503) },
      },
    },
    async (request) => {
      const me = await service.me(request.user.sub, request.user.username);
      if (!me) throw new Unauthorized('This account no longer exists');
      return me;
    },
  );

  app.get(
    '/jwks.json',
    {
      config: { public: true },
      schema: {
        summary: 'Public keys that verify access tokens',
        tags: ['auth'],
        response: { 200: Type.Object({ keys: Type.Array(Jwk) }) },
      },
    },
    async (_request, reply) => {
      reply.header('cache-control', 'public, max-age=60');
      return opts.jwks();
    },
  );
};
