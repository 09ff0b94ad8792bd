import { HashGate } from '../src/services/hash-gate';

describe('HashGate', () => {
  it('HashGate admits up to each limit, per account and per address, and a finished hash frees its place once', () => {
    const gate = new HashGate({ perAccount: 1, perAddress: 2 });
    const first = gate.enter('198.51.100.1', 'alice');
    expect(first).toBeDefined();
    expect(gate.enter('198.51.100.2', 'alice')).toBeUndefined();
    const bob = gate.enter('198.51.100.1', 'bob');
    expect(bob).toBeDefined();
    expect(gate.enter('198.51.100.1', 'carol')).toBeUndefined();
    expect(gate.enter('198.51.100.1')).toBeUndefined();
    first?.();
    first?.();
    expect(gate.count('acct#alice')).toBe(0);
    expect(gate.count('addr#198.51.100.1')).toBe(1);
    expect(gate.enter('198.51.100.3', 'alice')).toBeDefined();
  });
});
