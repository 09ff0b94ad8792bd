/** CPU and memory readings from /proc: shared with the resilience suite, which lives in scripts. */
export * from '@scs/testing/proc-stats';
