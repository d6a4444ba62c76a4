// How an order is processed: which orders wait for an approval and for how long, and how hard
// each step is tried. Set by the operator's configuration; the saga receives them in its input.

export interface SagaSettings {
  /** Orders with a total above this (minor units) wait for approveOrder. */
  approvalThreshold: number;
  approvalTimeoutMs: number;
  activityTimeoutMs: number;
  retryInitialIntervalMs: number;
  retryMaxIntervalMs: number;
  stepMaxAttempts: number;
  compensationMaxAttempts: number;
}
