// Entry point of the workflow bundle: every workflow type the worker registers.
export { orderSaga } from './order-saga.js';
