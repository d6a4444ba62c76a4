import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CLUSTER_TIER_FILES, spreadThrough } from './sequencer.js';

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

describe('the list of cluster-tier files', () => {
  it('names every test file that starts a tier on the Temporal cluster, and only those', () => {
    const root = fileURLToPath(new URL('../../', import.meta.url));
    const testFiles = readdirSync(join(root, 'test'), { recursive: true, encoding: 'utf8' })
      .filter((path) => path.endsWith('.test.ts'))
      .map((path) => `test/${path.replaceAll('\\', '/')}`)
      .filter((path) => path !== 'test/harness/sequencer.test.ts'); // this file names the pattern itself
    const onCluster = testFiles.filter((path) =>
      /temporal: 'cluster'|temporal: temporalKind\b/.test(readFileSync(join(root, path), 'utf8')),
    );
    expect(onCluster.sort()).toEqual([...CLUSTER_TIER_FILES].sort());
  });
});
