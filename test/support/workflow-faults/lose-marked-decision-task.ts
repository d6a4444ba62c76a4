// A workflow interceptor module for one test worker's bundle (never the product's): loses the
// workflow task in which a marked decision arrives, as when the worker running it dies or loses
// the server before it reports the task. A test marks a signal or an update by sending it with the
// LOSE_TASK_HEADER (its value names the fault). The task is lost at its end: after the local
// activities it ran (the saga's reservation and first charge run inside the task that takes an
// approval), so whatever they did stays done while the task's record of it is gone. Every attempt
// of such a task is lost until the fault is healed by a HEAL_SIGNAL carrying the same name; the
// attempt that holds the heal (or any later task) is kept, so the loss is bounded by the test and
// the saga goes on: with the decision when Temporal delivers it again, or without it if dropped.
// The heal is read from the history, so a replay after an eviction or a worker restart agrees.
import {
  defaultPayloadConverter,
  defineSignal,
  setHandler,
  type Headers,
  type WorkflowInterceptors,
} from '@temporalio/workflow';

/** Header a test client sets on a signal or update whose workflow task is to be lost; value: the fault's name. */
export const LOSE_TASK_HEADER = 'decision-surface-lose-task';

/** Signal that heals a fault: its one argument is the fault's name. */
export const HEAL_SIGNAL = 'decisionSurfaceHealLostTask';

/** How every failure this module injects begins, so a test can tell it from a real one. */
export const INJECTED_FAILURE_PREFIX = 'injected fault:';

type Payload = Headers[string];

function decode(payload: Payload | null | undefined): unknown {
  try {
    return payload ? defaultPayloadConverter.fromPayload(payload) : undefined;
  } catch {
    return undefined;
  }
}

function faultOf(headers: Record<string, Payload> | null | undefined): string | undefined {
  const fault = decode(headers?.[LOSE_TASK_HEADER]);
  return typeof fault === 'string' ? fault : undefined;
}

export const interceptors = (): WorkflowInterceptors => {
  /** Faults healed by a heal signal anywhere in the history seen so far (rebuilt on every replay). */
  const healed = new Set<string>();
  /** Faults whose marked decision arrived in the workflow task being run (not replayed). */
  let losing: string[] = [];
  /** Local activities scheduled and not yet resolved: the task goes on while there are any. */
  let localInFlight = 0;
  // A handler, so the heal is taken rather than buffered as a signal nobody handles.
  setHandler(defineSignal<[string]>(HEAL_SIGNAL), () => undefined);
  return {
    outbound: [
      {
        async scheduleLocalActivity(input, next) {
          localInFlight += 1;
          try {
            return await next(input);
          } finally {
            localInFlight -= 1;
          }
        },
      },
    ],
    internals: [
      {
        activate(input, next) {
          const { activation } = input;
          for (const job of activation.jobs ?? []) {
            if (job.signalWorkflow?.signalName === HEAL_SIGNAL) {
              const fault = decode(job.signalWorkflow.input?.[0]);
              if (typeof fault === 'string') healed.add(fault);
            }
            const fault = faultOf(job.signalWorkflow?.headers) ?? faultOf(job.doUpdate?.headers);
            if (fault && !activation.isReplaying) losing.push(fault);
          }
          return next(input);
        },
        concludeActivation(input, next) {
          if (localInFlight > 0) return next(input); // the task goes on: lose it at its end
          const lost = losing.filter((fault) => !healed.has(fault)); // a heal may come in a later batch
          losing = [];
          if (lost.length > 0)
            throw new Error(`${INJECTED_FAILURE_PREFIX} the workflow task holding decision ${lost.join(', ')} is lost`);
          return next(input);
        },
      },
    ],
  };
};
