// What the benchmark reports beside rates and latency, to say where an order's cost goes:
// the shape of a saga's Temporal history (workflow tasks, activity tasks, local activities,
// search-attribute upserts: each is server work and, for upserts, a visibility write), and
// where a Node process spends its CPU (a V8 CPU profile, self time grouped by package).
import { readdirSync, readFileSync } from 'node:fs';
import { join, sep } from 'node:path';
import type { Client } from '@temporalio/client';

/** Events of one workflow's history, by the kind of work they stand for. */
export interface HistoryShape {
  events: number;
  workflowTasks: number;
  activityTasks: number;
  localActivities: number;
  searchAttributeUpserts: number;
}

/** The average history shape of the given workflows (closed ones). */
export async function historyShape(client: Client, workflowIds: string[]): Promise<HistoryShape> {
  const total: HistoryShape = {
    events: 0,
    workflowTasks: 0,
    activityTasks: 0,
    localActivities: 0,
    searchAttributeUpserts: 0,
  };
  for (const workflowId of workflowIds) {
    const events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
    total.events += events.length;
    for (const event of events) {
      if (event.workflowTaskScheduledEventAttributes) total.workflowTasks += 1;
      if (event.activityTaskScheduledEventAttributes) total.activityTasks += 1;
      if (event.markerRecordedEventAttributes) total.localActivities += 1;
      if (event.upsertWorkflowSearchAttributesEventAttributes) total.searchAttributeUpserts += 1;
    }
  }
  const n = Math.max(workflowIds.length, 1);
  return Object.fromEntries(Object.entries(total).map(([k, v]) => [k, v / n])) as unknown as HistoryShape;
}

/** How often the Temporal server took the eager path, summed over task queues: its counters at one moment. */
export interface EagerDispatch {
  /** Activity tasks handed back in the answer to a workflow task's completion, not queued for a poller. */
  activities: number;
  /** Workflows whose first task went back with the start call (requested and granted). */
  workflowStarts: number;
}

/** Reads the server's eager-dispatch counters from its Prometheus endpoint (0 for one not yet emitted). */
export async function eagerDispatch(metricsUrl: string): Promise<EagerDispatch> {
  const text = await (await fetch(metricsUrl)).text();
  const sum = (metric: string) =>
    text
      .split('\n')
      .filter((line) => line.startsWith(`${metric}{`))
      .reduce((total, line) => total + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
  return {
    activities: sum('activity_eager_execution'),
    workflowStarts: sum('workflow_eager_execution') - sum('workflow_eager_execution_denied'),
  };
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  hitCount?: number;
}

/** Where a CPU profile's samples fall: a package, a project folder, or V8's own (GC, program). */
function bucketOf(node: ProfileNode, root: string): string {
  const { url, functionName } = node.callFrame;
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const path = decodeURIComponent(url.replace(/^file:\/\//, ''));
  const modules = path.lastIndexOf(`node_modules${sep}`);
  if (modules >= 0) {
    const parts = path.slice(modules + 'node_modules/'.length).split(sep);
    return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
  }
  if (path.startsWith(root)) return `project: ${path.slice(root.length).split(sep)[0]}/`;
  return path.startsWith('node:') ? 'node (built-in modules)' : path;
}

/** Self-time share per bucket over every .cpuprofile in `dir` (one process's), idle excluded. */
export function cpuProfileShares(dir: string, root: string): { bucket: string; share: number }[] {
  const hits = new Map<string, number>();
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) {
    const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { nodes: ProfileNode[] };
    for (const node of profile.nodes) {
      if (!node.hitCount || node.callFrame.functionName === '(idle)') continue;
      const bucket = bucketOf(node, root);
      hits.set(bucket, (hits.get(bucket) ?? 0) + node.hitCount);
    }
  }
  const all = [...hits.values()].reduce((a, b) => a + b, 0) || 1;
  return [...hits.entries()].map(([bucket, n]) => ({ bucket, share: n / all })).sort((a, b) => b.share - a.share);
}
