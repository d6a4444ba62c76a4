// Operator commands (ops/*.ts) run as an operator runs them: a process of their own, with the
// environment given, answering their exit code and everything they printed.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export async function runOpsCommand(
  entry: `ops/${string}.ts`,
  args: string[],
  env: Record<string, string | undefined>,
): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, ['--import', 'tsx', entry, ...args], { env });
    return { code: 0, out: stdout + stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, out: failed.stdout + failed.stderr };
  }
}
