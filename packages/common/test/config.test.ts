import { Type } from '@sinclair/typebox';
import { BaseConfig, ConfigError, copyConfigProperties, loadConfig, portProperty, runService } from '../src';

const Schema = Type.Object({ ...BaseConfig.properties, PORT: portProperty(3001) });

describe('configuration', () => {
  it('applies defaults and converts numbers', () => {
    const c = loadConfig(Schema, { PORT: '4000' });
    expect(c.PORT).toBe(4000);
    expect(c.AWS_REGION).toBe('us-east-1');
    expect(c.LOG_LEVEL).toBe('info');
  });

  it.each([
    ['PORT', 'not-a-number'],
    ['PORT', '70000'],
    ['LOG_LEVEL', 'loud'],
    ['AWS_ENDPOINT_URL', 'ftp://x'],
    ['AWS_MAX_ATTEMPTS', '0'],
    ['TRUSTED_PROXIES', 'alb.internal'],
    ['TRUSTED_PROXIES', '10.0.0.0/33'],
    ['TRUSTED_PROXIES', '300.1.1.1'],
    ['TRUSTED_PROXIES', '::1/129'],
    ['TRUSTED_PROXIES', '10.0.0.0/8/9'],
    ['TRUSTED_PROXIES', '10.0.0.0/20,*'],
  ])('refuses a bad %s (%s) and names the variable', (variable, value) => {
    expect(() => loadConfig(Schema, { [variable]: value })).toThrow(ConfigError);
    expect(() => loadConfig(Schema, { [variable]: value })).toThrow(new RegExp(`^Invalid configuration: ${variable} `));
  });

  it('COPY_IN_PARTS_ABOVE_BYTES: 5 GiB (S3\'s CopyObject limit) by default and at most, 5 MiB (S3\'s smallest part) at least', () => {
    const Copy = Type.Object(copyConfigProperties);
    expect(loadConfig(Copy, {}).COPY_IN_PARTS_ABOVE_BYTES).toBe(5368709120);
    expect(loadConfig(Copy, { COPY_IN_PARTS_ABOVE_BYTES: '5242880' }).COPY_IN_PARTS_ABOVE_BYTES).toBe(5242880);
    for (const value of ['5242879', '5368709121', '6GiB', '-1']) {
      expect(() => loadConfig(Copy, { COPY_IN_PARTS_ABOVE_BYTES: value })).toThrow(/^Invalid configuration: COPY_IN_PARTS_ABOVE_BYTES /);
    }
  });

  it('AU-06: TRUSTED_PROXIES takes addresses, CIDRs and proxy-addr range names, comma-separated', () => {
    for (const value of ['10.0.0.0/20, 10.0.16.0/20', '127.0.0.1/32,::1/128', 'loopback', '192.0.2.7', 'fd00::/8']) {
      expect(loadConfig(Schema, { TRUSTED_PROXIES: value }).TRUSTED_PROXIES).toBe(value);
    }
    expect(loadConfig(Schema, {}).TRUSTED_PROXIES).toBe('127.0.0.1/32,::1/128');
  });
});

describe('runService', () => {
  it('refuses to start a service whose configuration schema lacks the shared settings or PORT, saying so', async () => {
    const written: string[] = [];
    const stderr = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => written.push(String(chunk)) > 0);
    const exited = new Promise<number | undefined>((resolve) => {
      jest.spyOn(process, 'exit').mockImplementation(((code?: number) => resolve(code)) as typeof process.exit);
    });
    const build = jest.fn();
    try {
      runService('partial', Type.Object({ ...BaseConfig.properties }), build);
      expect(await exited).toBe(1);
    } finally {
      jest.restoreAllMocks();
    }
    expect(stderr).toHaveBeenCalled();
    expect(written.join('')).toContain('partial failed to start: the configuration schema of partial lacks the shared settings or PORT');
    expect(build).not.toHaveBeenCalled();
  });
});
