// The names of every way a step can fail, as they appear in a saga's `failure.type`, in
// Temporal's failures and in audit events. Each is spelled here once.

/** Business outcomes: the order cannot go on, and retrying will not change that. */
export const BusinessFailure = {
  outOfStock: 'OutOfStock',
  paymentDeclined: 'PaymentDeclined',
  invalidOrder: 'InvalidOrder',
} as const;

/** Failures that are not business outcomes. */
export const FailureType = {
  /** The payment circuit is open; details carry `{ retryAfterMs, attempt }`. */
  circuitOpen: 'CircuitOpen',
  /** The gateway refused our request as malformed. */
  gatewayRequestRejected: 'GatewayRequestRejected',
  /** The gateway is still processing an earlier request for this order; try again shortly. */
  paymentInProgress: 'PaymentInProgress',
  /** Nobody approved the order in time. */
  approvalTimedOut: 'ApprovalTimedOut',
  /** A cancelOrder or approveOrder update that no longer applies; details carry `{ status }`. */
  updateRefused: 'UpdateRefused',
  /** A decision whose input does not fit (wrong type, too long); its message says which field and why. */
  decisionInputInvalid: 'DecisionInputInvalid',
} as const;
