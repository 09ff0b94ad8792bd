/** CPU and memory readings from /proc: shared with the resilience suite, which lives in scripts. */
export * from '@scs/scripts/testing/proc-stats';
