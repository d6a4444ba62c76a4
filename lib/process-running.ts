// Whether a process still runs, for the lock and address files left by one that may be gone.

/** True while a process with this pid runs (EPERM: it runs, under another user). */
export function isProcessRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
