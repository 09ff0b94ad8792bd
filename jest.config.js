// One jest project per workspace. swc strips the types (type checking is `tsc -b` + the tsconfig.test.json
// projects); the shared global setup starts one emulator for the whole run and provisions it.
const path = require('node:path');

const transform = {
  '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } } }],
  // A few dependencies ship only ES modules, which jest's CommonJS module runtime cannot require.
  '^.+\\.m?js$': ['@swc/jest', { jsc: { target: 'es2022' }, module: { type: 'commonjs' } }],
};
const ESM_ONLY = ['content-disposition', 'cookie', '@fastify/cookie', 'p-retry', 'is-network-error'];
const transformIgnorePatterns = [`/node_modules/(?!(${ESM_ONLY.join('|')})/)`];

const project = (dir) => ({
  displayName: path.basename(dir),
  rootDir: path.join(__dirname, dir),
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  testEnvironment: 'node',
  transform,
  transformIgnorePatterns,
  // Workspace packages resolve to their sources (their dist is what the build ships).
  moduleNameMapper: {
    '^@scs/common$': path.join(__dirname, 'packages/common/src/index.ts'),
    // A module (`@scs/common/aws`) or a folder of modules (`@scs/common/files`).
    '^@scs/common/(.*)$': [path.join(__dirname, 'packages/common/src/$1.ts'), path.join(__dirname, 'packages/common/src/$1/index.ts')],
    '^@scs/(upload|backup-sync|auth)$': path.join(__dirname, 'services/$1/src/app.ts'),
    '^@scs/(upload|backup-sync|auth)/(.+)$': path.join(__dirname, 'services/$1/src/$2.ts'),
    '^@scs/sensitive-mover/(.+)$': path.join(__dirname, 'services/sensitive-mover/src/$1.ts'),
    '^@scs/local-stack/(.+)$': path.join(__dirname, 'packages/local-stack/src/$1.ts'),
    '^@scs/testing/(.+)$': path.join(__dirname, 'packages/testing/src/$1.ts'),
    '^@scs/terraform-harness/(.+)$': path.join(__dirname, 'tests/terraform/src/$1.ts'),
  },
});

module.exports = {
  rootDir: __dirname,
  transform,
  testTimeout: 60000,
  // JUnit XML for the pipeline (scripts/pipeline/test.sh sets JEST_JUNIT_OUTPUT_DIR).
  reporters: process.env.JEST_JUNIT_OUTPUT_DIR ? ['default', 'jest-junit'] : ['default'],
  globalSetup: '<rootDir>/packages/testing/src/global-setup.ts',
  globalTeardown: '<rootDir>/packages/testing/src/global-teardown.ts',
  projects: [
    project('packages/common'),
    project('packages/local-stack'),
    project('packages/testing'),
    project('services/auth'),
    project('services/upload'),
    project('services/backup-sync'),
    project('services/sensitive-mover'),
    project('tests/docs'),
    project('tests/e2e'),
    project('tests/resilience'),
    project('tests/terraform'),
    project('scripts'),
    project('bench'),
  ],
};
