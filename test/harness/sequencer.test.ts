import { describe, expect, it } from 'vitest';
import { spreadThrough } from './sequencer.js';

describe('the run order of cluster-tier files', () => {
  it('puts the first at the front and the others at even intervals', () => {
    expect(spreadThrough(['X', 'Y', 'Z'], ['a', 'b', 'c', 'd', 'e', 'f'])).toEqual([
      'X',
      'a',
      'b',
      'Y',
      'c',
      'd',
      'Z',
      'e',
      'f',
    ]);
  });

  it('keeps every file once when there are more to spread than others, or none', () => {
    expect(spreadThrough(['X', 'Y', 'Z'], ['a'])).toEqual(['X', 'Y', 'a', 'Z']);
    expect(spreadThrough([], ['a', 'b'])).toEqual(['a', 'b']);
    expect(spreadThrough(['X'], [])).toEqual(['X']);
  });
});
