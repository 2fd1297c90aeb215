import type { RunStatus } from '../runbook/protocol';
import { signedWith, whoMayAnswer } from '../runbook/render';
import type { SystemConfig } from '../config/systems';
import type { RolesState } from '../workflows/systemRoles';

const time = (iso?: string) => (iso ? iso.slice(11, 19) : '');
const took = (a: string, b?: string) => (b ? `${((Date.parse(b) - Date.parse(a)) / 1000).toFixed(1)}s` : 'running');

/** The step timeline an operator reads in a terminal. */
export function renderStatus(s: RunStatus): string {
  const out: string[] = [];
  out.push(`${s.workflow}  ${s.workflowId}${s.dryRun ? '  (dry run)' : ''}`);
  const labels = [s.environment && `env ${s.environment}`, s.service && `service ${s.service}`, s.release && `release ${s.release}`, s.requestedBy && `requested by ${s.requestedBy}`].filter(Boolean);
  if (labels.length) out.push(`  ${labels.join(', ')}`);
  out.push(`  state ${s.state}, phase ${s.phase}${s.currentStep ? `, step "${s.currentStep}"` : ''}`);
  if (s.error) out.push(`  error: ${s.error}`);
  if (s.steps.length) {
    out.push('', 'steps:');
    for (const st of s.steps) {
      out.push(`  ${String(st.id).padStart(3)} ${time(st.startedAt)} ${st.state.padEnd(19)} ${took(st.startedAt, st.endedAt).padStart(8)}  ${st.name}${st.host ? ` @${st.host}` : ''}${st.attempt > 1 ? ` (attempt ${st.attempt})` : ''}${st.error ? `\n        ${st.error.split('\n')[0]}` : ''}`);
    }
  }
  const open = s.gates.filter((g) => g.state === 'open');
  for (const g of open) {
    out.push('', `WAITING at gate "${g.id}" (${g.kind}): ${g.prompt}`);
    if (g.evidence) out.push(...g.evidence.split('\n').slice(0, 20).map((l) => `    ${l}`));
    if (g.kind === 'approval') {
      out.push(`  approvers: ${whoMayAnswer(g)}; ${g.votes.filter((v) => v.action === 'approve').length}/${g.quorum} approvals${g.fourEyes ? '; four eyes' : ''}; deadline ${g.deadline}`);
      out.push(`  answer: opsflow approve ${s.workflowId} --gate ${g.id}   |   opsflow reject ${s.workflowId} --gate ${g.id} --reason "..."`);
    } else {
      out.push(`  answer: opsflow resolve ${s.workflowId} --gate ${g.id} --action ${(g.actions ?? ['retry', 'skip', 'abort']).join('|')}`);
    }
  }
  const closed = s.gates.filter((g) => g.state !== 'open');
  if (closed.length) out.push('', 'gates:', ...closed.map((g) => `  ${g.id} (${g.kind}): ${g.state}${g.closedAt ? ` at ${time(g.closedAt)}` : ''}`));
  if (s.decisions.length) out.push('', 'decisions:', ...s.decisions.map((d) => `  ${d.at} ${d.by} ${d.action} ${d.gate}${d.comment ? `: ${d.comment}` : ''}${signedWith(d)}`));
  if (s.refused.length) out.push('', 'refused answers:', ...s.refused.map((r) => `  ${r.at} ${r.by} ${r.message}${r.gate ? ` ${r.gate}` : ''}: ${r.reason}`));
  return out.join('\n');
}

/** The runbook's role table, from the registry instead of a wiki. */
export function renderRoles(roles: RolesState, cfg: SystemConfig, regionOf: (account: string) => string): string {
  const row = (role: 'production' | 'standby') => {
    const infra = roles[role];
    return `${role.padEnd(11)} ${infra.padEnd(14)} ${regionOf(cfg.infrastructures[infra].aws).padEnd(16)} ${roles.releases[infra] ?? '(unknown)'}`;
  };
  const lines = [`${roles.system}`, `${'role'.padEnd(11)} ${'infrastructure'.padEnd(14)} ${'region'.padEnd(16)} release`, row('production'), row('standby')];
  const e = roles.embargo;
  lines.push(e ? `change embargo on ${e.infrastructure} since ${e.since}, held by ${e.owner} (run ${e.workflowId}): ${e.reason}` : 'no change embargo');
  if (!roles.changes.length) lines.push('(registry not started yet: roles as the inventory declares them)');
  else lines.push(`last change: ${roles.changes[roles.changes.length - 1].at} by ${roles.changes[roles.changes.length - 1].by}: ${roles.changes[roles.changes.length - 1].what}`);
  return lines.join('\n');
}
