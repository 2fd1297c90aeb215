// Signed gate answers from a terminal: `opsflow approve|reject|resolve` sign when the run's keys call for it,
// `opsflow sign` prints a signed payload for the Temporal UI's "Send an Update", and `opsflow audit` re-verifies
// every decision of a run from its history.
import { readFileSync } from 'node:fs';
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { Command } from 'commander';
import { signersQuery, statusQuery, type AnswerMessage } from '../runbook/messages';
import type { SignedFields } from '../runbook/signatures/check';

export interface AnswerPayload {
  gate?: string;
  by: string;
  comment?: string;
  reason?: string;
  action?: 'retry' | 'skip' | 'abort';
}

export interface SignOptions {
  /** A private key file instead of the SSH agent. */
  key?: string;
  /** Sign even where the run would take an unsigned answer (`opsflow sign`). */
  always?: boolean;
}

/**
 * The payload, signed with one of `by`'s keys in force for the run when the run takes signed answers from them;
 * unchanged where signatures are optional and `by` has no key.
 */
export async function withSignature<P extends AnswerPayload>(handle: WorkflowHandle, namespace: string, message: AnswerMessage, payload: P, opts: SignOptions = {}): Promise<P & SignedFields> {
  // A run from before signed gates has no such query: it takes unsigned answers. With a key given the answer is
  // signed whatever the keys say, so the run's status (its id and open gates, for the signed fields) is asked at
  // the same time rather than one round trip later.
  const statusNow = opts.key || opts.always ? handle.query(statusQuery) : undefined;
  statusNow?.catch(() => undefined);
  const signers = await handle.query(signersQuery).catch(() => null);
  const keys = signers?.people[payload.by]?.keys ?? [];
  const needsSigner = keys.length > 0 || signers?.signed === 'required' || opts.always || opts.key;
  if (!needsSigner) return payload;
  // The signing code (ssh2's agent client, the curves) is loaded only for an answer that is signed.
  const [{ agentSigner, fileSigner, personsKeys, signAnswer, SigningError }, { decisionOf }] = await Promise.all([import('../runbook/signatures/signer'), import('../runbook/signatures/message')]);
  if (!keys.length) {
    throw new SigningError(
      signers ? `${payload.by} has no keys in force for this run (people.${payload.by}.keys in the inventory when the run started): add your public key there for the next run` : 'this run started before signed answers existed: answer it unsigned',
    );
  }
  const status = await (statusNow ?? handle.query(statusQuery));
  const open = status.gates.filter((g) => g.state === 'open').map((g) => g.id);
  const gate = payload.gate ?? (open.length === 1 ? open[0] : undefined);
  if (!gate) throw new SigningError(open.length ? `several gates are open (${open.join(', ')}): name one with --gate` : 'no gate is open');
  const signer = opts.key ? fileSigner(opts.key, keys, personsKeys(payload.by)) : await agentSigner(keys, personsKeys(payload.by));
  const fields = await signAnswer(signer, {
    namespace,
    workflowId: status.workflowId,
    runId: status.runId,
    gate,
    decision: decisionOf(message, payload.action),
    by: payload.by,
    comment: payload.reason ?? payload.comment ?? '',
  });
  return { ...payload, gate, ...fields };
}

const ANSWER_WORDS = ['approve', 'reject', 'retry', 'skip', 'abort'] as const;

export function registerSigningCommands(
  program: Command,
  deps: { withClient: <T>(fn: (client: Client) => Promise<T>) => Promise<T>; me: () => string; error: (message: string, exitCode?: number) => Error },
): void {
  program
    .command('sign <workflowId> <answer>')
    .description(`print a signed answer (${ANSWER_WORDS.join(', ')}) to paste into the Temporal UI's "Send an Update" or \`temporal workflow update execute --input\``)
    .option('-g, --gate <gate>', 'gate id (needed when several are open)')
    .option('--by <person>', 'who answers', deps.me())
    .option('--key <file>', 'sign with this private key instead of the SSH agent')
    .option('-c, --comment <text>', 'comment recorded with the decision')
    .option('-r, --reason <text>', 'why (reject)')
    .action(async (id: string, word: string, o: { gate?: string; by: string; key?: string; comment?: string; reason?: string }) => {
      if (!(ANSWER_WORDS as readonly string[]).includes(word)) throw deps.error(`unknown answer "${word}": use ${ANSWER_WORDS.join(', ')}`, 2);
      if (word === 'reject' && !o.reason) throw deps.error('reject needs --reason', 2);
      const message: AnswerMessage = word === 'approve' || word === 'reject' ? word : 'resolve';
      const payload: AnswerPayload = { gate: o.gate, by: o.by, ...(message === 'resolve' ? { action: word as AnswerPayload['action'] } : {}), ...(word === 'reject' ? { reason: o.reason } : o.comment ? { comment: o.comment } : {}) };
      // Checked here as the workflow will, so a typo is caught before the signature is pasted anywhere.
      const { ANSWERS } = await import('../runbook/protocol');
      const problem = ANSWERS[message].schema.safeParse(payload);
      if (!problem.success) throw deps.error(`invalid answer: ${problem.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`, 2);
      const signed = await deps.withClient((client) => withSignature(client.workflow.getHandle(id), client.options.namespace, message, payload, { key: o.key, always: true }));
      console.log(JSON.stringify(signed));
      console.error(`send it as the "${message}" update of ${id} (Temporal UI: Send an Update, name ${message}); it is valid for 10 minutes, once`);
    });

  program
    .command('audit [workflowId]')
    .description("re-verify every decision of a run from its history alone: who decided what, with which key, and whether the signature verifies")
    .option('--history <file>', 'audit an exported history (`temporal workflow show --output json`) instead, offline')
    .action(async (id: string | undefined, o: { history?: string }) => {
      if (!id && !o.history) throw deps.error('name a workflow id, or --history FILE', 2);
      const [{ auditHistory, renderAudit }, { historyFromJSON }, { loadDataConverter }, { dataConverterFromEnv }] = await Promise.all([
        import('./audit'),
        import('@temporalio/common/lib/proto-utils'),
        import('@temporalio/common/lib/internal-non-workflow'),
        import('../temporal/connection'),
      ]);
      const report = o.history
        ? await auditHistory(historyFromJSON(JSON.parse(readFileSync(o.history, 'utf8'))), loadDataConverter(dataConverterFromEnv()))
        : await deps.withClient(async (client) => auditHistory(await client.workflow.getHandle(id as string).fetchHistory(), client.options.loadedDataConverter));
      console.log(renderAudit(report));
      if (report.problems > 0) throw deps.error(`${report.problems} decision(s) do not verify`);
    });
}
