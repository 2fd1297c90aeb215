// The Slack bridge's own key (OPSFLOW_SLACK_SIGNING_KEY_FILE): once Slack's request signature checks out, the
// interactivity endpoint signs the answer, naming the Slack user who clicked. The workflow verifies the bridge's
// signature against bridges.slack.keys and that the Slack user is `by` (people.<by>.slack), so a click counts
// only through this endpoint, and only for the person it maps to.
import type { Client } from '@temporalio/client';
import type { Inventory } from '../config/inventory';
import { statusQuery, type AnswerMessage } from '../runbook/protocol';
import type { SignedFields } from '../runbook/signatures/check';
import { decisionOf } from '../runbook/signatures/message';
import { fileSigner, signAnswer, type KeySigner } from '../runbook/signatures/signer';

/** The bridge's key; undefined when OPSFLOW_SLACK_SIGNING_KEY_FILE is not set. It must be listed in the inventory. */
export function bridgeSignerFromEnv(inventory: Inventory, env: NodeJS.ProcessEnv = process.env): KeySigner | undefined {
  const file = env.OPSFLOW_SLACK_SIGNING_KEY_FILE;
  return file ? fileSigner(file, inventory.gateSigners().slackBridge, "the Slack bridge's keys (bridges.slack.keys)") : undefined;
}

export interface BridgedAnswer {
  gate: string;
  by: string;
  group?: string;
  comment?: string;
  reason?: string;
  action?: 'retry' | 'skip' | 'abort';
}

/** The answer with the bridge's signature over it and the Slack user who clicked. */
export async function vouch<P extends BridgedAnswer>(signer: KeySigner, temporal: Client, workflowId: string, message: AnswerMessage, answer: P, slackUser: string): Promise<P & SignedFields> {
  const { runId } = await temporal.workflow.getHandle(workflowId).query(statusQuery);
  const fields = await signAnswer(signer, {
    namespace: temporal.options.namespace,
    workflowId,
    runId,
    gate: answer.gate,
    decision: decisionOf(message, answer.action),
    by: answer.by,
    comment: answer.reason ?? answer.comment ?? '',
    group: answer.group,
    slackUser,
  });
  return { ...answer, ...fields };
}
