/** CPU and memory readings from /proc: shared with the resilience suite (tests/resilience). */
export * from '@scs/testing/proc-stats';
