// What people decide about a running saga, and when it still may: a customer's cancel, an
// operator's approval (each by signal for `temporal`/`tctl`, or by update of the same name for
// the HTTP routes), and an operator's answer to a failed compensation.
import { ApplicationFailure, CancellationScope, condition, log, metricMeter, setHandler } from '@temporalio/workflow';
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
  type DecisionAccepted,
} from '../contract.js';
import {
  parseApproveInput,
  parseCancelInput,
  parseResolveInput,
  parseRetryInput,
  type CancelDecision,
  type Parsed,
} from './decision-inputs.js';
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
  /** The wait for an approval has ended (approved, timed out or cancelled): a late approval is refused. */
  private approvalClosed = false;
  /** Made on the first dropped signal: most sagas never drop one. */
  private signalsDropped: ReturnType<typeof metricMeter.createCounter> | undefined;

  /**
   * Registers the query and every handler; call once, first thing in the saga. `decisionsHold`
   * (DECISIONS_HOLD in activities.ts): a cancel no longer applies once the confirmation is being
   * sent, a late approval is refused, decision text is bounded. Sagas started before keep taking
   * what they took then, so their histories replay alike.
   */
  constructor(
    private readonly record: SagaRecord,
    private readonly decisionsHold = true,
  ) {
    setHandler(getStatusQuery, () => record.doc);
    this.handle(
      cancelOrderSignal,
      cancelOrderUpdate,
      parseCancelInput,
      () => this.cancelRefusal(),
      (input) => this.acceptCancel(input),
    );
    this.handle(
      approveOrderSignal,
      approveOrderUpdate,
      parseApproveInput,
      () => this.approveRefusal(),
      (input) => {
        this.approvedBy = input.approvedBy ?? 'unknown';
      },
    );
    this.signal(retryCompensationSignal, parseRetryInput, () =>
      this.operatorAnswers('retryCompensation', { retry: true }),
    );
    this.signal(resolveManuallySignal, parseResolveInput, (input) =>
      this.operatorAnswers('resolveManually', { note: input.note ?? 'resolved manually' }),
    );
  }

  /** From now on the outcome stands, whatever a late cancel asks. */
  settle(): void {
    this.settled = true;
  }

  throwIfCancelRequested(): void {
    if (this.cancelRequest) throw new CancelRequested();
  }

  /**
   * Waits for an approval: true when approved, false when `timeoutMs` passed; a cancel throws
   * CancelRequested. Either way the approval is then closed: a late one is refused, not taken.
   */
  async approval(timeoutMs: number): Promise<boolean> {
    const decided = await condition(() => this.approvedBy !== undefined || this.cancelRequest !== undefined, timeoutMs);
    this.approvalClosed = true;
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
    const cancellable = CANCELLABLE_STATUSES.includes(status) || (status === 'NOTIFYING' && !this.decisionsHold);
    const applies = !TERMINAL_STATUSES.includes(status) && (this.cancelRequest || (!this.settled && cancellable));
    if (applies) return undefined;
    if (status === 'NOTIFYING') return `order is ${status}: its confirmation is being sent, so it completes`;
    return `order is ${status}; only an order still in progress can be cancelled`;
  }

  /** Why an approval does not apply, or undefined while the saga waits for it. */
  private approveRefusal(): string | undefined {
    const { status } = this.record;
    // Approved a moment ago (the saga moves on in this same workflow task): say so, not just the status.
    if (this.approvedBy !== undefined && status === 'AWAITING_APPROVAL')
      return `order is ${status} and was just approved by ${this.approvedBy}; it goes on`;
    if (status !== 'AWAITING_APPROVAL')
      return `order is ${status}; only an order in AWAITING_APPROVAL can be approved, once`;
    if (this.cancelRequest)
      return `order is being cancelled (${this.cancelRequest.reason}); it can no longer be approved`;
    if (this.approvalClosed && this.decisionsHold)
      return `order was not approved within its approval timeout and is being rejected; it can no longer be approved`;
    return undefined;
  }

  private acceptCancel(input: CancelDecision): void {
    if (this.cancelRequest) return;
    const { reason, cancelledBy } = input;
    this.cancelRequest = { reason: reason ?? 'no reason given', ...(cancelledBy && { by: cancelledBy }) };
    this.runningStep?.cancel();
  }

  private operatorAnswers(signal: string, decision: OperatorDecision): void {
    if (this.record.status === 'COMPENSATION_FAILED') this.operatorDecision = decision;
    else this.drop(signal, 'not_applicable', 'the saga is not in COMPENSATION_FAILED');
  }

  /** Logs and counts a signal the saga does not take; `problem` says why, for the operator who sent it. */
  private drop(signal: string, cause: 'invalid_input' | 'not_applicable', problem: string): void {
    log.warn(`${signal} signal dropped: ${problem}`, { status: this.record.status, signal, cause });
    this.signalsDropped ??= metricMeter.createCounter(
      'saga_signals_dropped',
      'signals',
      'Signals the saga logged and dropped: input that does not fit, or a decision that no longer applies',
    );
    this.signalsDropped.add(1, { signal, cause });
  }

  /** A signal whose input is checked first: input that does not fit is logged, counted and dropped. */
  private signal<Input, Decision>(
    definition: SignalDefinition<[Input?]>,
    parse: (input: unknown, bounded: boolean) => Parsed<Decision>,
    take: (decision: Decision) => void,
  ): void {
    setHandler(definition, (input) => {
      const parsed = parse(input, this.decisionsHold);
      if (!parsed.ok) return this.drop(definition.name, 'invalid_input', parsed.problem);
      this.noteIgnoredFields(definition.name, parsed.ignoredFields);
      take(parsed.value);
    });
  }

  /**
   * A decision by signal (fire-and-forget: input that does not fit, or a decision that no longer
   * applies, is logged, counted and dropped) or by update of the same name (the validator refuses
   * either with the reason, before anything changes).
   */
  private handle<Input, Decision>(
    signal: SignalDefinition<[Input?]>,
    update: UpdateDefinition<DecisionAccepted, [Input]>,
    parse: (input: unknown, bounded: boolean) => Parsed<Decision>,
    refusal: () => string | undefined,
    accept: (decision: Decision) => void,
  ): void {
    this.signal(signal, parse, (decision) => {
      const reason = refusal();
      if (reason) this.drop(signal.name, 'not_applicable', reason);
      else accept(decision);
    });
    setHandler(
      update,
      (input) => {
        // The validator passed it (it does not run again when the history is replayed).
        const parsed = parse(input, this.decisionsHold);
        if (!parsed.ok) throw invalidInput(update.name, parsed.problem);
        accept(parsed.value);
        return { accepted: true, status: this.record.status };
      },
      {
        validator: (input: Input) => {
          const parsed = parse(input, this.decisionsHold);
          if (!parsed.ok) throw invalidInput(update.name, parsed.problem);
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

  private noteIgnoredFields(signal: string, fields: string[]): void {
    if (fields.length > 0)
      log.warn(
        `${signal}: ignored unknown field(s) ${fields
          .slice(0, 5)
          .map((f) => `"${f.slice(0, 40)}"`)
          .join(', ')}`,
        {
          signal,
        },
      );
  }
}

function invalidInput(update: string, problem: string): ApplicationFailure {
  return ApplicationFailure.create({
    type: FailureType.decisionInputInvalid,
    message: `${update}: ${problem}`,
    nonRetryable: true,
  });
}
