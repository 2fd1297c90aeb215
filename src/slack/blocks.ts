// What a gate looks like in Slack: the question, the evidence, who may answer, the deadline, and buttons while
// it is open; once it closes, the decision in place of the buttons.
import type { GateRecord } from '../runbook/protocol';

export interface RunRef {
  workflow: string;
  workflowId: string;
  environment?: string;
  service?: string;
  release?: string;
}

/** What a button carries back to the interactivity endpoint. */
export interface ButtonValue {
  w: string;
  g: string;
}

export const ACTIONS = {
  approve: 'opsflow_approve',
  reject: 'opsflow_reject',
  retry: 'opsflow_resolve_retry',
  skip: 'opsflow_resolve_skip',
  abort: 'opsflow_resolve_abort',
} as const;

const mrkdwn = (text: string) => ({ type: 'mrkdwn', text });
const clip = (text: string, max: number) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);
const who = (id: string) => (/^U[A-Z0-9]+$/.test(id) ? `<@${id}>` : id);

function decision(gate: GateRecord): string {
  const last = gate.votes[gate.votes.length - 1];
  const approvers = gate.votes.filter((v) => v.action === 'approve').map((v) => who(v.by));
  switch (gate.state) {
    case 'approved':
      return `:white_check_mark: Approved by ${approvers.join(', ')} at ${last?.at}`;
    case 'rejected':
      return `:x: Rejected by ${who(last?.by ?? '?')} at ${last?.at}${last?.comment ? `: ${last.comment}` : ''}`;
    case 'timed-out':
      return `:hourglass: Timed out at ${gate.closedAt}: nobody approved, so it counts as rejected`;
    case 'cancelled':
      return `:no_entry_sign: The run was cancelled at ${gate.closedAt}, before an answer`;
    default:
      return `:arrow_right: ${gate.state} chosen by ${who(last?.by ?? '?')} at ${last?.at}`;
  }
}

export function gateMessage(run: RunRef, gate: GateRecord): { text: string; blocks: unknown[] } {
  const open = gate.state === 'open';
  const title = gate.kind === 'approval' ? 'Approval needed' : 'A step failed';
  const context = [run.environment, run.service, run.release].filter(Boolean).join(' · ');
  const approvals = gate.votes.filter((v) => v.action === 'approve').map((v) => who(v.by));
  const allowed = [...gate.approvers.map(who), ...gate.approverGroups.map((g) => `<!subteam^${g}>`)];
  const value = JSON.stringify({ w: run.workflowId, g: gate.id } satisfies ButtonValue);
  const blocks: unknown[] = [
    { type: 'header', text: { type: 'plain_text', text: clip(`${open ? title : title.replace('needed', 'closed')}: ${run.workflow}`, 150) } },
    { type: 'section', text: mrkdwn(clip(`*${gate.prompt}*${context ? `\n${context}` : ''}\nrun \`${run.workflowId}\`, gate \`${gate.id}\``, 3000)) },
  ];
  if (gate.evidence) blocks.push({ type: 'section', text: mrkdwn(clip(`\`\`\`${gate.evidence}\`\`\``, 3000)) });
  blocks.push({
    type: 'context',
    elements: [
      mrkdwn(
        clip(
          [
            `May answer: ${allowed.length ? allowed.join(', ') : 'anyone'}`,
            gate.kind === 'approval' ? `approvals ${approvals.length}/${gate.quorum}${approvals.length ? ` (${approvals.join(', ')})` : ''}` : undefined,
            gate.fourEyes ? 'four eyes' : undefined,
            gate.deadline ? `deadline ${gate.deadline}` : undefined,
          ]
            .filter(Boolean)
            .join(' · '),
          3000,
        ),
      ),
    ],
  });
  if (open) {
    const buttons =
      gate.kind === 'approval'
        ? [
            { type: 'button', action_id: ACTIONS.approve, style: 'primary', text: { type: 'plain_text', text: 'Approve' }, value },
            { type: 'button', action_id: ACTIONS.reject, style: 'danger', text: { type: 'plain_text', text: 'Reject…' }, value },
          ]
        : (gate.actions ?? ['retry', 'skip', 'abort']).map((a) => ({
            type: 'button',
            action_id: ACTIONS[a],
            text: { type: 'plain_text', text: a[0].toUpperCase() + a.slice(1) },
            value,
            ...(a === 'abort' ? { style: 'danger' } : a === 'retry' ? { style: 'primary' } : {}),
          }));
    blocks.push({ type: 'actions', block_id: 'opsflow_gate', elements: buttons });
  } else {
    blocks.push({ type: 'section', text: mrkdwn(clip(decision(gate), 3000)) });
  }
  return { text: `${open ? title : 'Closed'}: ${gate.prompt}`, blocks };
}

/** The modal that asks a rejecting approver for the reason. */
export function rejectModal(value: ButtonValue & { c: string }, prompt: string): unknown {
  return {
    type: 'modal',
    callback_id: 'opsflow_reject',
    private_metadata: JSON.stringify(value),
    title: { type: 'plain_text', text: 'Reject' },
    submit: { type: 'plain_text', text: 'Reject' },
    close: { type: 'plain_text', text: 'Cancel' },
    blocks: [
      { type: 'section', text: mrkdwn(clip(`*${prompt}*`, 3000)) },
      { type: 'input', block_id: 'reason', label: { type: 'plain_text', text: 'Why?' }, element: { type: 'plain_text_input', action_id: 'reason', multiline: true } },
    ],
  };
}
