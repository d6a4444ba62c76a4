// The order the run's two forks take test files in. The files that start a Temporal cluster tier
// run one at a time (test/support/run-lock.ts); queued next to each other, the second one's fork
// would sit waiting for the lock for minutes while the first runs. They are spread through the
// queue instead, so the other fork works through ordinary files meanwhile. Otherwise vitest's
// own order (unknown and failed files first, then the longest).
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/** Files whose tier is a Temporal cluster (startChaosTier with `temporal: 'cluster'`). */
export const CLUSTER_TIER_FILES = [
  'test/chaos/chaos.test.ts',
  'test/end-to-end/scale-out.test.ts',
  'test/operator/reconcile-command.test.ts',
];

const isClusterTier = (file: TestSpecification) =>
  CLUSTER_TIER_FILES.some((path) => file.moduleId.replaceAll('\\', '/').endsWith(path));

/** Puts `spread` at even intervals into `rest`, the first at the front. */
export function spreadThrough<T>(spread: readonly T[], rest: readonly T[]): T[] {
  const result = [...rest];
  for (let i = spread.length - 1; i >= 0; i -= 1)
    result.splice(Math.round((i * rest.length) / spread.length), 0, spread[i]!);
  return result;
}

export default class ClusterTiersSpread extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    return spreadThrough(
      sorted.filter(isClusterTier),
      sorted.filter((file) => !isClusterTier(file)),
    );
  }
}
