import { ConfigError, loadConfig } from '@scs/common';
import { AuthConfig } from '../src/config';

describe('auth configuration', () => {
  it('defaults: registrations 10 a minute and 30 an hour per address; 2 hashes in flight per account, 4 per address; a device known for 90 days', () => {
    const c = loadConfig(AuthConfig, {});
    expect(c).toMatchObject({
      REGISTER_RATE_LIMIT_PER_MINUTE: 10,
      REGISTER_RATE_LIMIT_PER_HOUR: 30,
      REFRESH_RATE_LIMIT_PER_MINUTE: 60,
      HASH_CONCURRENCY_PER_ACCOUNT: 2,
      HASH_CONCURRENCY_PER_ADDRESS: 4,
      LOGIN_MAX_FAILURES_PER_DEVICE: 5,
      DEVICE_COOKIE_MAX_AGE_SECONDS: 90 * 24 * 3600,
    });
  });

  it.each([
    ['REGISTER_RATE_LIMIT_PER_MINUTE', '0'],
    ['REGISTER_RATE_LIMIT_PER_HOUR', '0'],
    ['REGISTER_RATE_LIMIT_PER_HOUR', 'many'],
    ['REFRESH_RATE_LIMIT_PER_MINUTE', '-1'],
    ['HASH_CONCURRENCY_PER_ACCOUNT', '0'],
    ['HASH_CONCURRENCY_PER_ADDRESS', 'lots'],
    ['LOGIN_MAX_FAILURES_PER_DEVICE', '0'],
    ['DEVICE_COOKIE_MAX_AGE_SECONDS', '60'],
    ['DEVICE_COOKIE_MAX_AGE_SECONDS', String(401 * 24 * 3600)],
    ['TRUSTED_PROXIES', '10.0.0.0/40'],
  ])('refuses a bad %s (%s) and names the variable', (variable, value) => {
    expect(() => loadConfig(AuthConfig, { [variable]: value })).toThrow(ConfigError);
    expect(() => loadConfig(AuthConfig, { [variable]: value })).toThrow(new RegExp(`^Invalid configuration: ${variable} `));
  });
});
