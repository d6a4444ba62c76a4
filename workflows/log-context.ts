// Workflow interceptors bundled with the workflow code: every log line of a saga, its own and
// the SDK's ("Workflow started" comes before any span is active), carries the order's trace id,
// which the starter puts in the workflow's memo.
import { workflowInfo, type WorkflowInterceptorsFactory } from '@temporalio/workflow';
import { TRACE_ID_MEMO_KEY } from './contract.js';

export const interceptors: WorkflowInterceptorsFactory = () => ({
  outbound: [
    {
      getLogAttributes(input, next) {
        const traceId = workflowInfo().memo?.[TRACE_ID_MEMO_KEY];
        return next(typeof traceId === 'string' ? { trace_id: traceId, ...input } : input);
      },
    },
  ],
});
