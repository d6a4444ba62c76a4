// What people decide about a running saga, and when it still may: a customer's cancel, an
// operator's approval (each by signal for `temporal`/`tctl`, or by update of the same name for
// the HTTP routes), and an operator's answer to a failed compensation.
import { ApplicationFailure, CancellationScope, condition, log, setHandler } from '@temporalio/workflow';
import type { SignalDefinition, UpdateDefinition } from '@temporalio/common';
import { FailureType } from '../../domain/failures.js';
import {
  approveOrderSignal,
  approveOrderUpdate,
  CANCELLABLE_STATUSES,
  TERMINAL_STATUSES,
  cancelOrderSignal,
  cancelOrderUpdate,
  getStatusQuery,
  resolveManuallySignal,
  retryCompensationSignal,
  type CancelOrderInput,
  type DecisionAccepted,
} from '../contract.js';
import type { SagaRecord } from './record.js';

/** Raised inside the saga when a cancel was accepted between steps. */
export class CancelRequested extends Error {
  constructor() {
    super('cancel requested');
    this.name = 'CancelRequested';
  }
}

/** An operator's answer to a compensation that gave up: try it again, or it was done by hand. */
export type OperatorDecision = { retry: true } | { note: string };

export class SagaDecisions {
  /** The accepted cancel, if any: it decides the outcome. */
  cancelRequest: { reason: string; by?: string } | undefined;
  approvedBy: string | undefined;
  private operatorDecision: OperatorDecision | undefined;
  private runningStep: CancellationScope | undefined;
  /** The outcome is decided: a cancel can no longer change it. */
  private settled = false;

  /** Registers the query and every handler; call once, first thing in the saga. */
  constructor(private readonly record: SagaRecord) {
    setHandler(getStatusQuery, () => record.doc);
    this.handle(
      cancelOrderSignal,
      cancelOrderUpdate,
      () => this.cancelRefusal(),
      (input) => this.acceptCancel(input),
    );
    this.handle(
      approveOrderSignal,
      approveOrderUpdate,
      () => this.approveRefusal(),
      (input) => {
        this.approvedBy = input?.approvedBy?.trim() || 'unknown';
      },
    );
    setHandler(retryCompensationSignal, () => this.operatorAnswers('retryCompensation', { retry: true }));
    setHandler(resolveManuallySignal, (input) =>
      this.operatorAnswers('resolveManually', { note: input?.note?.trim() || 'resolved manually' }),
    );
  }

  /** From now on the outcome stands, whatever a late cancel asks. */
  settle(): void {
    this.settled = true;
  }

  throwIfCancelRequested(): void {
    if (this.cancelRequest) throw new CancelRequested();
  }

  /** Waits for an approval: true when approved, false when `timeoutMs` passed; a cancel throws CancelRequested. */
  async approval(timeoutMs: number): Promise<boolean> {
    const decided = await condition(() => this.approvedBy !== undefined || this.cancelRequest !== undefined, timeoutMs);
    this.throwIfCancelRequested();
    return decided;
  }

  /** Runs a forward step's work in a scope of its own, so an accepted cancel stops its retries. */
  async cancellable<T>(work: () => Promise<T>): Promise<T> {
    const scope = new CancellationScope();
    this.runningStep = scope;
    try {
      return await scope.run(work);
    } finally {
      this.runningStep = undefined;
    }
  }

  /**
   * Waits for retryCompensation or resolveManually, and takes it. An answer that came while the
   * COMPENSATION_FAILED audit event was still being stored counts (it used to be wiped here).
   */
  async operator(): Promise<OperatorDecision> {
    await condition(() => this.operatorDecision !== undefined);
    const decision = this.operatorDecision!;
    this.operatorDecision = undefined;
    return decision;
  }

  /**
   * Why a cancel no longer applies, or undefined when it does. A repeated cancel still applies
   * while the saga is cancelling; once it has entered its final status (its last audit event may
   * still be on its way) the answer is that status, as it is after the workflow closed.
   */
  private cancelRefusal(): string | undefined {
    const { status } = this.record;
    const applies =
      !TERMINAL_STATUSES.includes(status) &&
      (this.cancelRequest || (!this.settled && CANCELLABLE_STATUSES.includes(status)));
    return applies ? undefined : `order is ${status}; only an order still in progress can be cancelled`;
  }

  private approveRefusal(): string | undefined {
    const { status } = this.record;
    if (status === 'AWAITING_APPROVAL' && this.approvedBy === undefined && !this.cancelRequest) return undefined;
    // Approved a moment ago (the saga moves on in this same workflow task): say so, not just the status.
    if (this.approvedBy !== undefined && status === 'AWAITING_APPROVAL')
      return `order is ${status} and was just approved by ${this.approvedBy}; it goes on`;
    return `order is ${status}; only an order in AWAITING_APPROVAL can be approved, once`;
  }

  private acceptCancel(input: CancelOrderInput | undefined): void {
    if (this.cancelRequest) return;
    const by = input?.cancelledBy?.trim();
    this.cancelRequest = { reason: input?.reason?.trim() || 'no reason given', ...(by && { by }) };
    this.runningStep?.cancel();
  }

  private operatorAnswers(signal: string, decision: OperatorDecision): void {
    if (this.record.status === 'COMPENSATION_FAILED') this.operatorDecision = decision;
    else log.warn(`${signal} ignored: the saga is not in COMPENSATION_FAILED`, { status: this.record.status });
  }

  /**
   * A decision by signal (fire-and-forget: one that no longer applies is logged and dropped) or by
   * update of the same name (the validator refuses what no longer applies, before anything changes).
   */
  private handle<Input>(
    signal: SignalDefinition<[Input?]>,
    update: UpdateDefinition<DecisionAccepted, [Input]>,
    refusal: () => string | undefined,
    accept: (input: Input | undefined) => void,
  ): void {
    setHandler(signal, (input) => {
      const reason = refusal();
      if (reason) log.warn(`${signal.name} ignored: ${reason}`, { status: this.record.status });
      else accept(input);
    });
    setHandler(
      update,
      (input) => {
        accept(input);
        return { accepted: true, status: this.record.status };
      },
      {
        validator: (_input: Input) => {
          const reason = refusal();
          if (reason)
            throw ApplicationFailure.create({
              type: FailureType.updateRefused,
              message: reason,
              details: [{ status: this.record.status }],
            });
        },
      },
    );
  }
}
