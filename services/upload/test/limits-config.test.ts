import { ConfigError, loadConfig } from '@scs/common';
import { UploadConfig } from '../src/config';

/** The abuse limits' knobs are validated at start-up: a bad value names its variable. */
describe('the limits configuration', () => {
  it('has defaults that bound a signed-in user', () => {
    expect(loadConfig(UploadConfig, {})).toMatchObject({
      QUOTA_FILES: 10_000,
      LISTS_PER_MINUTE: 600,
      ACCOUNT_CHECK_CACHE_SECONDS: 5,
      MIN_UPLOAD_BYTES_PER_SECOND: 1024,
      UPLOAD_RATE_WINDOW_SECONDS: 30,
      UPLOAD_RATE_GRACE_SECONDS: 10,
      BODY_TIMEOUT_SECONDS: 30,
    });
  });

  it.each([
    ['QUOTA_FILES', '0'],
    ['QUOTA_FILES', 'many'],
    ['LISTS_PER_MINUTE', '0'],
    ['ACCOUNT_CHECK_CACHE_SECONDS', '-1'],
    ['ACCOUNT_CHECK_CACHE_SECONDS', '900'],
    ['MIN_UPLOAD_BYTES_PER_SECOND', '-5'],
    ['UPLOAD_RATE_WINDOW_SECONDS', '0'],
    ['UPLOAD_RATE_GRACE_SECONDS', '-1'],
    ['BODY_TIMEOUT_SECONDS', '0'],
    ['BODY_TIMEOUT_SECONDS', '3600'],
    // Above 5 GiB a streamed upload's object could not be copied verified (resumable uploads take such files).
    ['MAX_UPLOAD_BYTES', '5368709121'],
  ])('%s=%s is refused, naming the variable', (variable, value) => {
    expect(() => loadConfig(UploadConfig, { [variable]: value })).toThrow(ConfigError);
    expect(() => loadConfig(UploadConfig, { [variable]: value })).toThrow(new RegExp(`^Invalid configuration: ${variable} `));
  });

  it('MIN_UPLOAD_BYTES_PER_SECOND=0 turns the minimum rate off', () => {
    expect(loadConfig(UploadConfig, { MIN_UPLOAD_BYTES_PER_SECOND: '0' }).MIN_UPLOAD_BYTES_PER_SECOND).toBe(0);
  });
});
