import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { UPLOAD_NODE_ARGS } from '../src/stack/run';

/** docker-compose.yml, read as Compose reads it (anchors and merge keys resolved). */
const ROOT = join(__dirname, '../../..');
const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, ComposeService>;
};
const images = JSON.parse(readFileSync(join(ROOT, 'docker/images.json'), 'utf8')) as Record<
  string,
  { workspace: string; entry: string; port?: number; target: string; nodeOptions?: string }
>;

interface ComposeService {
  build?: { dockerfile?: string; target?: string; args?: Record<string, string> };
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  healthcheck?: { test?: string[]; disable?: boolean };
  depends_on?: Record<string, { condition: string }>;
  init?: boolean;
  read_only?: boolean;
  cap_drop?: string[];
  security_opt?: string[];
  ports?: string[];
  tmpfs?: string[];
}

const services = compose.services;
const dependsOn = (name: string) => Object.fromEntries(Object.entries(services[name]?.depends_on ?? {}).map(([k, v]) => [k, v.condition]));

describe('docker-compose.yml', () => {
  it("runs the stack of npm start: emulator, provisioning, the three services, the sensitive mover's runner and the gateway", () => {
    expect(Object.keys(services).sort()).toEqual(['auth', 'backup-sync', 'emulator', 'gateway', 'provision', 'sensitive-mover', 'upload']);
    expect(services['sensitive-mover']?.build?.args).toMatchObject({ WORKSPACE: 'services/sensitive-mover', ENTRY: 'dist/runner.js' });
  });

  it('builds each Node image with the arguments docker/images.json gives it', () => {
    for (const [name, image] of Object.entries(images)) {
      const build = services[name]?.build;
      expect({ name, dockerfile: build?.dockerfile, target: build?.target, workspace: build?.args?.WORKSPACE, entry: build?.args?.ENTRY }).toEqual({
        name,
        dockerfile: 'docker/Dockerfile',
        target: image.target,
        workspace: image.workspace,
        entry: image.entry,
      });
      if (image.port) expect(build?.args?.PORT).toBe(String(image.port));
      expect({ name, nodeOptions: build?.args?.NODE_OPTIONS }).toEqual({ name, nodeOptions: image.nodeOptions });
    }
  });

  it('runs the upload service with the Node options npm start and the benchmark give it (NODE_OPTIONS in its image)', () => {
    expect(images.upload?.nodeOptions).toBe(UPLOAD_NODE_ARGS.join(' '));
  });

  it('starts in dependency order: emulator healthy -> provisioning done -> services healthy -> gateway', () => {
    expect(dependsOn('provision')).toEqual({ emulator: 'service_healthy' });
    for (const name of ['auth', 'upload', 'backup-sync', 'sensitive-mover']) expect(dependsOn(name)).toEqual({ provision: 'service_completed_successfully' });
    expect(dependsOn('gateway')).toEqual({ auth: 'service_healthy', upload: 'service_healthy', 'backup-sync': 'service_healthy' });
  });

  it('gives every long-running HTTP process a healthcheck (the image HEALTHCHECK or its own)', () => {
    expect(services.emulator?.healthcheck?.test?.join(' ')).toContain('/moto-api/');
    for (const name of ['auth', 'upload', 'backup-sync', 'gateway']) {
      expect({ name, disabled: services[name]?.healthcheck?.disable ?? false }).toEqual({ name, disabled: false });
    }
    // The one-shot provisioning is not a service to probe.
    expect(services.provision?.healthcheck?.disable).toBe(true);
  });

  it('hands the admin variables to auth, which creates the admin, and not to the provisioning', () => {
    expect(services.auth?.environment).toMatchObject({
      SCS_ADMIN_USERNAME: '${SCS_ADMIN_USERNAME}',
      SCS_ADMIN_PASSWORD: '${SCS_ADMIN_PASSWORD}',
    });
    expect(Object.keys(services.provision?.environment ?? {})).not.toContain('SCS_ADMIN_USERNAME');
  });

  it('hardens every container: init, read-only root, no capabilities, no new privileges', () => {
    for (const [name, service] of Object.entries(services)) {
      expect({ name, init: service.init, readOnly: service.read_only, capDrop: service.cap_drop, securityOpt: service.security_opt }).toEqual({
        name,
        init: true,
        readOnly: true,
        capDrop: ['ALL'],
        securityOpt: ['no-new-privileges:true'],
      });
    }
  });

  it('publishes only the gateway, on the loopback address unless asked otherwise', () => {
    const published = Object.entries(services).filter(([, s]) => s.ports?.length);
    expect(published.map(([name]) => name)).toEqual(['gateway']);
    expect(services.gateway?.ports).toEqual(['${GATEWAY_BIND:-127.0.0.1}:${GATEWAY_PORT:-8080}:8080']);
  });

  it('gives the emulator a /tmp that holds the largest upload several times over (moto spools objects above 5 MiB there)', () => {
    const tmp = services.emulator?.tmpfs?.find((t) => t.startsWith('/tmp:')) ?? '';
    const size = /size=(?:\$\{[A-Z_]+:-)?(\d+)([kmg])/.exec(tmp);
    const bytes = size ? Number(size[1]) * { k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[size[2] as 'k' | 'm' | 'g'] : 0;
    const maxUpload = Number(/\$\{MAX_UPLOAD_BYTES:-(\d+)\}/.exec(services.upload?.environment?.MAX_UPLOAD_BYTES ?? '')?.[1]);
    expect(maxUpload).toBeGreaterThan(0);
    expect(bytes).toBeGreaterThanOrEqual(4 * maxUpload);
  });
});
