// A saga build the replay gate must refuse (bundled by test/operator/replay-gate.test.ts, never
// the product's): the product's orderSaga with a timer added before its first step, the kind of
// change that makes a saga's first workflow task issue other commands than the histories the
// running build recorded, so every one of them fails replay with a nondeterminism error.
import { sleep } from '@temporalio/workflow';
import type { OrderSagaInput, OrderStatusDocument } from '../../../workflows/contract.js';
import { orderSaga as productSaga } from '../../../workflows/order-saga.js';

export async function orderSaga(input: OrderSagaInput): Promise<OrderStatusDocument> {
  await sleep('1 second');
  return productSaga(input);
}
