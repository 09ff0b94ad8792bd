import fastifyJwt from '@fastify/jwt';
import { type Algorithm, createDecoder, createVerifier, TokenError, type VerifierOptions } from 'fast-jwt';
// Re-exported so every service that uses this plugin also sees @fastify/jwt's request.user typing.
export type { FastifyJWT } from '@fastify/jwt';
import type { FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import { LRUCache } from 'lru-cache';
import { Forbidden, Unauthorized } from '../errors';
import { JWT_ALGORITHM, type PublicKeyStore } from '../keys';

export type Role = 'user' | 'admin';

/** Claims of an access token (RFC 9068-like); `token_use` keeps other JWTs from standing in. */
export interface AccessTokenClaims {
  sub: string;
  username: string;
  role: Role;
  token_use: 'access';
  iss?: string;
  aud?: string;
  iat?: number;
  exp?: number;
}

export interface AuthUser {
  sub: string;
  username: string;
  role: Role;
}

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: AccessTokenClaims;
    user: AuthUser;
  }
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Routes are authenticated unless they say `public: true`. */
    public?: boolean;
    /** Roles allowed on the route (default: any authenticated user). */
    roles?: Role[];
  }
  interface FastifyInstance {
    authenticate: onRequestHookHandler;
  }
}

/**
 * The account's role now (not when its token was issued), or undefined when the account no
 * longer exists. Consulted on every request to a route with `config.roles`.
 */
export type RoleLookup = (user: AuthUser) => Promise<Role | undefined>;

export interface AuthenticateOptions {
  keys: PublicKeyStore;
  issuer: string;
  audience: string;
  /** Seconds of clock skew tolerated on exp/nbf/iat (JW-03). */
  clockToleranceSeconds?: number;
  /**
   * Where routes with `config.roles` read the account's current role. Required as soon as one
   * such route is registered (registration fails otherwise), so a role can never be taken from a
   * token alone.
   */
  currentRole?: RoleLookup;
  /**
   * Every authenticated route (not only those with `config.roles`) refuses a token whose account
   * no longer exists (401), read through `currentRole` and remembered for `cacheMs` per account
   * (0: read on every request). Without it only routes with roles look the account up.
   */
  accountCheck?: { cacheMs: number; now?: () => number };
}

/** Accounts remembered by the account check at most (least recently checked out first). */
export const ACCOUNTS_CACHED = 10_000;

/**
 * `lookup` behind a short cache: one answer per account (`sub` and `username`) for `cacheMs`,
 * and one read at a time per account (requests arriving meanwhile share it). A failed read is not
 * remembered.
 */
export function cachedRoleLookup(lookup: RoleLookup, cacheMs: number, now: () => number = Date.now): RoleLookup {
  const answers = new Map<string, { role: Role | undefined; until: number } | { pending: Promise<Role | undefined> }>();
  return async (user) => {
    const key = `${user.sub}\u0000${user.username}`;
    const known = answers.get(key);
    if (known && 'pending' in known) return known.pending;
    if (known && known.until > now()) return known.role;
    answers.delete(key);
    const pending = lookup(user);
    answers.set(key, { pending });
    try {
      const role = await pending;
      answers.delete(key);
      if (cacheMs > 0) {
        if (answers.size >= ACCOUNTS_CACHED) answers.delete(answers.keys().next().value as string);
        answers.set(key, { role, until: now() + cacheMs });
      }
      return role;
    } catch (err) {
      answers.delete(key);
      throw err;
    }
  };
}

const ROLES: ReadonlySet<string> = new Set(['user', 'admin']);

/**
 * Verified tokens remembered, so a token seen before is not checked from scratch (an ES256
 * signature check is most of a request's CPU, and decoding plus hashing a token again is most of
 * what is left). Bounded (least recently used out), keyed by the whole token string (JW-07: two
 * tokens share an entry only if they are the same string), and an entry lasts until the token
 * expires (clock tolerance included, as the verifier counts it), at most VERIFIED_TOKEN_CACHE_MS.
 * An entry remembers the key that verified it: it is answered only while the key store still
 * holds that key under the same `kid` (a retired or replaced key sends the token through the
 * full check again).
 */
export const VERIFIED_TOKENS_CACHED = 10_000; // about 1 KB an entry: at most ~10 MB
/** Longest an entry lives, in milliseconds (an access token's lifetime). */
export const VERIFIED_TOKEN_CACHE_MS = 15 * 60_000;
/** Verifiers kept (one per trusted key; keys rotate rarely, so this is never reached in practice). */
const MAX_VERIFIERS = 16;

/** A verified token as the cache holds it. `until`: epoch milliseconds after which it is checked again. */
interface VerifiedToken {
  claims: AccessTokenClaims;
  kid: string | undefined;
  pem: string;
  until: number;
}

/** fast-jwt verifier options for access tokens signed with `key` (a public key, SPKI PEM): JW-01, JW-03, JW-04. */
export function accessTokenVerifierOptions(
  key: string,
  opts: Pick<AuthenticateOptions, 'issuer' | 'audience' | 'clockToleranceSeconds'>,
): Partial<VerifierOptions> & { key: string } {
  return {
    key,
    algorithms: [JWT_ALGORITHM as Algorithm],
    allowedIss: opts.issuer,
    allowedAud: opts.audience,
    clockTolerance: (opts.clockToleranceSeconds ?? 30) * 1000,
    requiredClaims: ['sub', 'exp', 'iat', 'iss', 'aud'],
    // The plugin keeps its own cache of verified tokens in front of the verifier (see VERIFIED_TOKENS_CACHED).
    cache: false,
  };
}

/**
 * The token of an `Authorization: Bearer <token>` header, or undefined when the header is not
 * one. RFC 9110 section 11.4 / RFC 6750: the scheme is case-insensitive and separated from the
 * credentials by one or more spaces; the token is a token68.
 */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  return /^bearer +([A-Za-z0-9\-._~+/]+=*)$/i.exec(header)?.[1];
}

/**
 * Verifies access tokens with public keys only: one algorithm (ES256), keys looked up by `kid`
 * in the configured key set (jku/x5u/jwk headers are never followed), `iss`/`aud`/`exp` checked.
 * Every route is authenticated in `onRequest` (before any body byte is read) unless its config
 * says `public: true`; `config.roles` restricts a route to roles, checked against both the token's
 * claim and the account's current role (`currentRole`, read on every request: never cached).
 * With `accountCheck`, every other authenticated route refuses a token whose account is gone
 * (401), the answer cached for seconds. A token verified before is answered from a bounded cache (see VERIFIED_TOKENS_CACHED).
 */
export const authenticatePlugin = fp<AuthenticateOptions>(
  async function authenticate(app, opts) {
    // @fastify/jwt for its request.user decoration and for signing (auth passes its key per call).
    // Access tokens are verified by the hook below, never with request.jwtVerify().
    await app.register(fastifyJwt, {
      secret: {
        private: 'unused-for-signing',
        public: async () => {
          throw new Unauthorized('Access tokens are verified by the authenticate hook');
        },
      },
    });
    // The header names the key (kid): read first, then the token is checked by that key's verifier,
    // whose cache answers a token seen before. Calling fast-jwt directly (as @fastify/jwt does
    // inside, minus its per-request option merging and callback chain) keeps a cached answer cheap.
    const decodeHeader = createDecoder({ complete: true });
    const clockToleranceMs = (opts.clockToleranceSeconds ?? 30) * 1000;
    const verified = new LRUCache<string, VerifiedToken>({ max: VERIFIED_TOKENS_CACHED });
    /** The claims of a token verified before by a key the store still holds, or undefined. */
    const remembered = (token: string): AccessTokenClaims | undefined => {
      const entry = verified.get(token);
      if (entry === undefined) return undefined;
      if (Date.now() < entry.until && opts.keys.loadedPem(entry.kid) === entry.pem) return entry.claims;
      verified.delete(token);
      return undefined;
    };
    const verifiers = new Map<string, (token: string) => AccessTokenClaims>();
    const verifierFor = (pem: string) => {
      let verifier = verifiers.get(pem);
      if (!verifier) {
        if (verifiers.size >= MAX_VERIFIERS) verifiers.clear();
        verifier = createVerifier(accessTokenVerifierOptions(pem, opts)) as (token: string) => AccessTokenClaims;
        verifiers.set(pem, verifier);
      }
      return verifier;
    };
    const currentRole = opts.currentRole;
    if (opts.accountCheck && !currentRole) throw new Error('The account check needs a currentRole lookup');
    const accountRole = opts.accountCheck && currentRole ? cachedRoleLookup(currentRole, opts.accountCheck.cacheMs, opts.accountCheck.now) : undefined;

    /** The full check (key by `kid`, signature, claims); a token that passes is remembered. */
    const verifyAndRemember = async (token: string, request: FastifyRequest): Promise<AccessTokenClaims> => {
      let claims: AccessTokenClaims;
      let kid: string | undefined;
      let pem: string | undefined;
      try {
        ({ kid } = (decodeHeader(token) as { header: { kid?: string } }).header);
        pem = opts.keys.loadedPem(kid) ?? (await opts.keys.resolvePem(kid));
        if (!pem) throw new Unauthorized('Access token signed by an unknown key');
        claims = verifierFor(pem)(token);
      } catch (err) {
        request.log.debug({ err }, 'access token rejected');
        throw new Unauthorized(
          (err as { code?: string }).code === TokenError.codes.expired
            ? 'Your session has expired: sign in again'
            : 'The access token is not valid: sign in again',
        );
      }
      if (claims.token_use !== 'access' || typeof claims.username !== 'string' || !ROLES.has(claims.role)) {
        throw new Unauthorized('The access token is not valid: sign in again');
      }
      const expiresAt = typeof claims.exp === 'number' ? claims.exp * 1000 + clockToleranceMs : 0;
      verified.set(token, { claims, kid, pem, until: Math.min(expiresAt, Date.now() + VERIFIED_TOKEN_CACHE_MS) });
      return claims;
    };

    const verify: onRequestHookHandler = async function (request: FastifyRequest, _reply: FastifyReply) {
      const token = bearerToken(request.headers.authorization);
      if (token === undefined) {
        throw new Unauthorized('Sign in first: this request needs a valid access token');
      }
      let claims = remembered(token);
      if (claims === undefined) claims = await verifyAndRemember(token, request);
      request.user = { sub: claims.sub, username: claims.username, role: claims.role };
      const roles = request.routeOptions.config.roles;
      if (!roles) {
        if (accountRole && (await accountRole(request.user)) === undefined) throw new Unauthorized('This account no longer exists');
        return;
      }
      // Both the token and the account must hold an allowed role: a demotion applies at once, and a
      // promotion only to tokens issued after it (a new sign-in).
      if (!roles.includes(claims.role)) throw new Forbidden('You are not allowed to do this');
      const role = await (currentRole as RoleLookup)(request.user);
      if (role === undefined) throw new Unauthorized('This account no longer exists');
      request.user.role = role;
      if (!roles.includes(role)) throw new Forbidden('You are not allowed to do this');
    };
    app.decorate('authenticate', verify);

    app.addHook('onRoute', (route) => {
      const config = route.config as { public?: boolean; roles?: Role[] } | undefined;
      if (config?.public === true) return;
      if (config?.roles && !currentRole) {
        throw new Error(`${route.method} ${route.url} is restricted to roles, but the authenticate plugin has no currentRole lookup`);
      }
      const existing = route.onRequest ? (Array.isArray(route.onRequest) ? route.onRequest : [route.onRequest]) : [];
      route.onRequest = [verify, ...existing];
    });
  },
  { name: 'scs-authenticate', fastify: '5.x' },
);
