import { Type } from '@sinclair/typebox';
import { BaseConfig, ConfigError, loadConfig, portProperty } from '../src';

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
  ])('refuses a bad %s (%s) and names the variable', (variable, value) => {
    expect(() => loadConfig(Schema, { [variable]: value })).toThrow(ConfigError);
    expect(() => loadConfig(Schema, { [variable]: value })).toThrow(new RegExp(`^Invalid configuration: ${variable} `));
  });
});
