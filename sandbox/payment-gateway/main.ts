// Runs the payment gateway sandbox on PAYMENT_SANDBOX_PORT (default 4010); with
// PAYMENT_SANDBOX_LEDGER_FILE its ledger survives restarts (npm start keeps it in .data/).
import { startPaymentGateway } from './server.js';

const port = Number(process.env.PAYMENT_SANDBOX_PORT ?? 4010);
if (!Number.isInteger(port) || port < 0 || port > 65_535) {
  process.stderr.write(`PAYMENT_SANDBOX_PORT must be a port number (got "${process.env.PAYMENT_SANDBOX_PORT}")\n`);
  process.exit(2);
}
try {
  const ledgerFile = process.env.PAYMENT_SANDBOX_LEDGER_FILE || undefined;
  const sandbox = await startPaymentGateway(port, process.env.PAYMENT_SANDBOX_HOST ?? '127.0.0.1', { ledgerFile });
  process.stdout.write(
    `payment gateway sandbox listening on ${sandbox.url} (ledger: ${sandbox.url}/v1/ledger, ${ledgerFile ? `kept in ${ledgerFile}` : 'in memory'})\n`,
  );
  const stop = () => void sandbox.close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
} catch (error) {
  process.stderr.write(
    `cannot start the payment gateway sandbox on port ${port}: ${(error as Error).message}; set PAYMENT_SANDBOX_PORT to a free port\n`,
  );
  process.exit(1);
}
