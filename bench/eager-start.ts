// The ceiling's empty workflows are started the fastest way the SDK allows: eagerly, by a client on
// the baseline worker's own connection. The bench asks that worker over NATS (request-reply on this
// subject); it answers the workflow id, or "error: …".
export const EAGER_START_SUBJECT = 'bench.start.empty';
