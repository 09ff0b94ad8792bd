/** Generated upload payloads and the streamed POST: shared with the resilience suite, which lives in scripts. */
export * from '@scs/testing/payload';
