// The ways a person approves a gate, each timed by the gate part. One entry per path: a new path (a signed
// Slack click, say) is one more entry here and nothing else changes.
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { runProgram } from '../contenders/spawn';
import { tail } from '../contenders/contender';
import { slackClickPath } from './slackClick';

/** Approves the open gate `run` of the workflow; resolves once the path reports it done. */
export type ApprovalPath = (workflowId: string) => Promise<void>;

export interface GateEnv {
  client: Client;
  /** The Temporal frontend, for paths that connect on their own (the CLI). */
  address: string;
  approver: string;
}

export interface ApprovalVariant {
  name: string;
  /** Runs for this variant in a full run; --quick runs a third. A child process per run costs seconds. */
  runs: number;
  path(env: GateEnv): ApprovalPath;
}

const CLI = path.join(__dirname, '../../bin/opsflow.js');

export const APPROVAL_VARIANTS: ApprovalVariant[] = [
  {
    name: 'update (client executeUpdate)',
    runs: 30,
    path: (env) => async (workflowId) => {
      await env.client.workflow.getHandle(workflowId).executeUpdate('approve', { args: [{ gate: 'run', by: env.approver }] });
    },
  },
  {
    name: 'CLI (node bin/opsflow.js approve)',
    runs: 15,
    path: (env) => async (workflowId) => {
      const res = await runProgram(process.execPath, [CLI, 'approve', workflowId, '--gate', 'run', '--by', env.approver], { env: { ...process.env, TEMPORAL_ADDRESS: env.address }, timeoutMs: 60_000 });
      if (res.code !== 0) throw new Error(`opsflow approve exited ${res.code}: ${tail(res.stderr || res.stdout)}`);
    },
  },
  {
    name: 'Slack (signed click → interactivity endpoint)',
    runs: 30,
    path: (env) => {
      const ready = slackClickPath(env);
      return async (workflowId) => (await ready)(workflowId);
    },
  },
];
