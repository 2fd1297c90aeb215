// What a run shows: its status as the Temporal UI's "current details" markdown, and the lines an operator reads.
// Pure functions: the CLI uses them too.
import type { GateRecord, RunStatus, UndoReport, Vote } from './protocol';

const since = (start: string, end?: string) => (end ? `${((Date.parse(end) - Date.parse(start)) / 1000).toFixed(1)}s` : '…');

export function whoMayAnswer(g: GateRecord): string {
  const who = [...g.approvers, ...(g.approverGroups ?? []).map((x) => `Slack group ${x}`)];
  return who.length ? who.join(', ') : 'anyone';
}

/** One line on what ending early put back, for the status, the announcement and the run's error. */
export function describeUndo(u: UndoReport): string {
  if (u.committed) return 'the run had committed its change (every node or host done and healthy), so nothing was rolled back';
  if (!u.putBack.length && !u.notPutBack.length) return 'nothing to put back';
  return [u.putBack.length ? `put back: ${u.putBack.join('; ')}` : '', u.notPutBack.length ? `NOT put back: ${u.notPutBack.join('; ')}` : ''].filter(Boolean).join('; ');
}

/** How a decision was signed, if it was: the key's fingerprint, and the Slack user the Slack bridge vouched for. */
export function signedWith(d: Vote): string {
  return d.key ? ` (signed ${d.key}${d.slackUser ? `, Slack bridge for ${d.slackUser}` : ''})` : '';
}

/** The step timeline and open gates, as the Temporal UI's "current details" shows them. */
export function renderMarkdown(s: RunStatus): string {
  const lines = [
    `**${s.workflow}** ${[s.environment, s.service, s.release].filter(Boolean).join(' · ')}${s.dryRun ? ' (dry run)' : ''}`,
    `state: **${s.state}**, phase: ${s.phase}${s.currentStep ? `, step: ${s.currentStep}` : ''}`,
  ];
  if (s.error) lines.push(`error: ${s.error}`);
  for (const g of s.gates.filter((x) => x.state === 'open')) {
    lines.push(
      '',
      `### Waiting at gate \`${g.id}\` (${g.kind})`,
      g.prompt,
      ...(g.evidence ? ['', '```', g.evidence.slice(0, 2000), '```'] : []),
      g.kind === 'approval'
        ? `approvers: ${whoMayAnswer(g)}; ${g.votes.filter((v) => v.action === 'approve').length}/${g.quorum} approvals${g.fourEyes ? '; four eyes' : ''}${g.deadline ? `; deadline ${g.deadline}` : ''}`
        : `answer with resolve: ${(g.actions ?? []).join(', ')}${g.approvers.length ? ` (by ${g.approvers.join(', ')})` : ''}`,
      g.signed
        ? `payload: signed answers only: paste what \`opsflow sign ${s.workflowId} ${g.kind === 'approval' ? 'approve' : (g.actions ?? ['retry'])[0]} --gate ${g.id} --by <you>\` prints`
        : `payload: \`{"gate": "${g.id}", "by": "<you>"${g.kind === 'approval' ? '' : `, "action": "${(g.actions ?? ['retry'])[0]}"`}}\``,
    );
  }
  if (s.steps.length) {
    lines.push('', '| # | step | host | state | took |', '|---|---|---|---|---|');
    for (const st of s.steps.slice(-30)) lines.push(`| ${st.id} | ${st.name}${st.attempt > 1 ? ` (attempt ${st.attempt})` : ''} | ${st.host ?? ''} | ${st.state} | ${since(st.startedAt, st.endedAt)} |`);
  }
  if (s.decisions.length) {
    lines.push('', 'decisions:');
    for (const d of s.decisions) lines.push(`- ${d.at} ${d.by} ${d.action} \`${d.gate}\`${d.comment ? `: ${d.comment}` : ''}${signedWith(d)}`);
  }
  return lines.join('\n');
}
