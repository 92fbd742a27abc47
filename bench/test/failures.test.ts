import { describe, expect, it } from 'vitest';
import { failures } from '../failures.ts';

const load = (non2xx: number, errors: number, timeouts: number) => ({ non2xx, errors, timeouts });

describe('failed requests of a load', () => {
  it('says nothing when nothing failed', () => {
    expect(failures([load(0, 0, 0)])).toEqual({ count: 0, text: '' });
    expect(failures([])).toEqual({ count: 0, text: '' });
  });

  it('counts a timeout once, though autocannon has it among its errors too', () => {
    expect(failures([load(0, 1, 1)])).toEqual({ count: 1, text: ' (1 failed!: 1 timeouts)' });
  });

  it('names each kind, summed over the loads', () => {
    expect(failures([load(2, 3, 1), load(1, 1, 0)])).toEqual({
      count: 7,
      text: ' (7 failed!: 3 non-2xx, 3 socket errors, 1 timeouts)',
    });
  });
});
