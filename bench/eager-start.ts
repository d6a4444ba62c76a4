// The baselines that take no input (the ceiling's empty workflow, the saga's shape) are started the
// fastest way the SDK allows: eagerly, by a client on the baseline worker's own connection. The
// bench asks that worker over NATS (request-reply on this subject, the workflow type as the body;
// empty: emptyWorkflow); it answers the workflow id, or "error: …".
export const EAGER_START_SUBJECT = 'bench.start';
export const EAGER_START_TYPES: readonly string[] = ['emptyWorkflow', 'sagaShape'];
