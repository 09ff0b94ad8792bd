// One ESLint config for the whole repository (flat config, typescript-eslint).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: ['**/dist/**', '**/node_modules/**', '.venv/**', 'coverage/**', 'test-artifacts/**', 'terraform/**', 'bench/results/**'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      'no-console': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
    },
  },
  {
    files: ['**/test/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.ts', 'tests/**/*.ts'],
    rules: { 'no-console': 'off' },
  },
  {
    files: ['services/upload/public/**/*.js'],
    languageOptions: {
      sourceType: 'script',
      globals: Object.fromEntries(
        ['document', 'window', 'fetch', 'XMLHttpRequest', 'FormData', 'URLSearchParams', 'URL', 'console'].map((g) => [g, 'readonly']),
      ),
    },
  },
  {
    // The resumable uploader is an ES module, loaded by app.js with import().
    files: ['services/upload/public/resumable.js'],
    languageOptions: {
      sourceType: 'module',
      globals: Object.fromEntries(
        ['document', 'XMLHttpRequest', 'localStorage', 'crypto', 'btoa', 'AbortController', 'setTimeout', 'clearTimeout', 'Worker'].map((g) => [g, 'readonly']),
      ),
    },
  },
  {
    // The file-hashing worker (a module worker, started by resumable.js).
    files: ['services/upload/public/sha256-worker.js'],
    languageOptions: { sourceType: 'module', globals: { self: 'readonly' } },
  },
  {
    files: ['**/*.mjs', '**/*.js'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', require: 'readonly', module: 'writable', __dirname: 'readonly', URL: 'readonly', fetch: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', Buffer: 'readonly' },
    },
  },
);
