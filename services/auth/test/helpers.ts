// The auth service's test helpers live in packages/testing (other workspaces' tests use them too).
export * from '@scs/testing/auth-app';
