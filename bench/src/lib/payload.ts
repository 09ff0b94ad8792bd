/** Generated upload payloads and the streamed POST: shared with the resilience suite (tests/resilience). */
export * from '@scs/testing/payload';
