// Signed gate answers (docs/gates.md, "Signed gate answers"): keys made by ssh-keygen here, a real ssh-agent, the real
// CLI, the temporal CLI as the UI would send a payload, the Slack endpoint with its bridge key, and a real
// Temporal dev server. Every refusal leaves the run's history as it was.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { workflowMetadataQuery } from '@temporalio/workflow';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadInventory } from '../src/config/inventory';
import type { RunStatus } from '../src/runbook/protocol';
import type { Decision } from '../src/runbook/signatures/message';
import { fileSigner, signClaim } from '../src/runbook/signatures/signer';
import type { FleetRunInput } from '../src/schemas/fleetRun';
import { ACTIONS } from '../src/slack/blocks';
import { serveInteractivity } from '../src/slack/interactivity';
import { slackClient } from '../src/slack/settings';
import { findTemporalCli } from '../src/temporal/binary';
import type { fleetRun } from '../src/workflows/fleetRun';
import { recordHistory, runOpsflow, runTemporal, startWorker, testEnv, unique, waitFor, writeInventory } from './support/harness';
import { signSlackRequest, startSlackDouble, type SlackDouble } from './support/slackDouble';

type Handle = WorkflowHandle<typeof fleetRun>;
type Who = 'ben' | 'carol' | 'dave' | 'mallory' | 'bridge';

const dir = mkdtempSync(path.join(tmpdir(), 'opsflow-signed-'));
const keyFile = (who: Who) => path.join(dir, who);
const publicKey = (who: Who) => readFileSync(`${keyFile(who)}.pub`, 'utf8').trim();
/** The fingerprint as `ssh-keygen -l` prints it. */
const fingerprint = (who: Who) => execFileSync('ssh-keygen', ['-l', '-f', `${keyFile(who)}.pub`], { encoding: 'utf8' }).split(' ')[1];

const SLACK_SECRET = unique('slack-secret');
const taskQueue = unique('signed');
let env: TestWorkflowEnvironment;
let worker: { stop(): Promise<void> };
let agent: ChildProcess;
let slack: SlackDouble;
let endpoint: { url: string; close(): Promise<void> };
const agentSocket = path.join(dir, 'agent.sock');

beforeAll(async () => {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'ben', '-f', keyFile('ben')]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ecdsa', '-b', '256', '-N', '', '-C', 'carol', '-f', keyFile('carol')]);
  for (const who of ['dave', 'mallory', 'bridge'] as const) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', who, '-f', keyFile(who)]);
  // ben keeps his key in a real agent; carol signs with her key file.
  agent = spawn('ssh-agent', ['-D', '-a', agentSocket], { stdio: 'ignore' });
  await waitFor(() => existsSync(agentSocket), 'the ssh-agent socket');
  execFileSync('ssh-add', ['-q', keyFile('ben')], { env: { ...process.env, SSH_AUTH_SOCK: agentSocket }, stdio: 'ignore' });

  const inventory = writeInventory({
    people: {
      ben: { slack: 'U0BEN', keys: [publicKey('ben')] },
      carol: { keys: [publicKey('carol')] },
      dave: { keys: [publicKey('dave')] },
      mallory: { slack: 'U0MALLORY', keys: [publicKey('mallory')] },
      erin: {},
    },
    // Signatures optional here: who has keys signs all the same, who has none answers unsigned. Its host is never
    // reached (the runs stop at their gate).
    environments: { lenient: { hosts: { h1: { address: '127.0.0.1', port: 1, user: 'nobody', agent: true } }, gates: { signed: 'optional' } } },
    sections: { gates: { signed: 'required' }, bridges: { slack: { keys: [publicKey('bridge')] } } },
  });
  env = await testEnv();
  worker = await startWorker(env, inventory, taskQueue);
  slack = await startSlackDouble();
  endpoint = await serveInteractivity(
    {
      temporal: env.client,
      slack: slackClient({ token: slack.token, apiUrl: slack.url }),
      signingSecret: SLACK_SECRET,
      inventory: loadInventory(inventory),
      bridge: fileSigner(keyFile('bridge'), [publicKey('bridge')], "the Slack bridge's keys"),
    },
    { host: '127.0.0.1', port: 0 },
  );
});

afterAll(async () => {
  await endpoint?.close();
  await slack?.stop();
  await worker?.stop();
  await env?.teardown();
  agent?.kill();
});

function start(input: Partial<FleetRunInput> = {}): Promise<Handle> {
  return env.client.workflow.start<typeof fleetRun>('fleetRun', {
    taskQueue,
    workflowId: unique('signed'),
    args: [{ environment: 'test', target: { hosts: ['h1'] }, command: ['true'], approval: { approvers: ['ben', 'carol'], quorum: 2 }, requestedBy: 'dave', ...input } as FleetRunInput],
  });
}

const status = (h: Handle) => h.query<RunStatus>('status');
const openGate = (h: Handle, id: string) => waitFor(async () => (await status(h)).gates.find((g) => g.id === id && g.state === 'open'), `gate ${id} open`);
const eventCount = async (h: Handle) => (await h.fetchHistory()).events?.length ?? 0;
const cli = (args: string[], extraEnv: Record<string, string> = {}) => runOpsflow(args, { env: { SSH_AUTH_SOCK: agentSocket, ...extraEnv } });

/** The signed fields of an answer, made here with `who`'s key file; `o` moves it in time or to another run. */
async function sign(who: Who, h: Handle, a: { gate: string; decision: Decision; by: string; comment?: string; slackUser?: string }, o: { time?: string; runId?: string } = {}) {
  const claim = {
    namespace: env.client.options.namespace,
    workflowId: h.workflowId,
    runId: o.runId ?? (await status(h)).runId,
    ...a,
    comment: a.comment ?? '',
    time: o.time ?? new Date().toISOString(),
    nonce: randomBytes(9).toString('base64url'),
  };
  const signature = await signClaim(fileSigner(keyFile(who), [publicKey(who)], who), claim);
  return { time: claim.time, nonce: claim.nonce, runId: claim.runId, ...(a.slackUser ? { slackUser: a.slackUser } : {}), signature };
}

/** Sends an update the gate must refuse: returns the refusal, and checks that the history did not grow. */
async function refused(h: Handle, update: 'approve' | 'reject' | 'resolve', payload: Record<string, unknown>): Promise<string> {
  const before = await eventCount(h);
  const err = await h.executeUpdate(update, { args: [payload] }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, JSON.stringify(payload)).toBeInstanceOf(WorkflowUpdateFailedError);
  expect(await eventCount(h)).toBe(before);
  return ((err as WorkflowUpdateFailedError).cause as Error).message;
}

describe('signed gate answers', () => {
  it('accepts approvals signed through the SSH agent and with a key file, and records each key fingerprint', async () => {
    const h = await start();
    await openGate(h, 'run');
    expect((await h.query(workflowMetadataQuery)).currentDetails).toContain(`payload: signed answers only: paste what \`opsflow sign ${h.workflowId} approve --gate run --by <you>\` prints`);
    const byAgent = await cli(['approve', h.workflowId, '--by', 'ben', '--comment', 'looks fine']);
    expect(byAgent.stderr).toBe('');
    expect(byAgent.stdout).toContain('approve: gate "run" is open (1/2 approvals)');
    const byFile = await cli(['approve', h.workflowId, '--by', 'carol', '--key', keyFile('carol')], { SSH_AUTH_SOCK: '' });
    expect(byFile.stdout).toContain('approve: gate "run" is approved (2/2 approvals)');
    await h.result();
    const decisions = (await status(h)).decisions;
    expect(decisions.map((d) => [d.by, d.key])).toEqual([
      ['ben', fingerprint('ben')],
      ['carol', fingerprint('carol')],
    ]);
    expect((await cli(['status', h.workflowId])).stdout).toContain(`ben approve run: looks fine (signed ${fingerprint('ben')})`);
    expect((await h.query(workflowMetadataQuery)).currentDetails).toContain(`ben approve \`run\`: looks fine (signed ${fingerprint('ben')})`);
    recordHistory(h, 'fleetRun-signed');
  });

  it('refuses, leaving the history unchanged: unsigned, a key that is not ben (as a signal too), another run, another gate, reject replayed as approve, expired, the same signature twice', async () => {
    const h = await start({ target: { hosts: ['h1'] }, command: ['false'], failure: { onFailure: 'gate' } } as Partial<FleetRunInput>);
    const other = await start();
    await openGate(h, 'run');
    await openGate(other, 'run');
    const approve = { gate: 'run', decision: 'approve' as const, by: 'ben' };

    const unsigned = await refused(h, 'approve', { gate: 'run', by: 'ben' });
    expect(unsigned).toContain('gate "run" takes signed answers only (gates.signed: required)');
    expect(unsigned).toContain(`opsflow sign ${h.workflowId} approve --gate run --by ben`);

    expect(await refused(h, 'approve', { gate: 'run', by: 'ben', ...(await sign('mallory', h, approve)) })).toBe(`key ${fingerprint('mallory')} is not one of ben's keys (people.ben.keys)`);
    // The same answer as a signal: held to the same checks, its refusal recorded in the status.
    await h.signal('approve', { gate: 'run', by: 'ben', ...(await sign('mallory', h, approve)) });
    expect(await waitFor(async () => (await status(h)).refused[0], 'the refused signal')).toMatchObject({ by: 'ben', reason: `key ${fingerprint('mallory')} is not one of ben's keys (people.ben.keys)` });

    const forOther = await sign('ben', other, approve);
    expect(await refused(h, 'approve', { gate: 'run', by: 'ben', ...forOther })).toContain(`the signature is for another run (${forOther.runId})`);
    const { runId: _dropped, ...withoutRun } = forOther;
    expect(await refused(h, 'approve', { gate: 'run', by: 'ben', ...withoutRun })).toContain('the signature does not match this answer');

    const rejection = await sign('ben', h, { gate: 'run', decision: 'reject', by: 'ben', comment: 'not today' });
    expect(await refused(h, 'approve', { gate: 'run', by: 'ben', comment: 'not today', ...rejection })).toBe('the signature is for reject, not approve');

    const elevenMinutesAgo = new Date(Date.now() - 11 * 60_000).toISOString();
    expect(await refused(h, 'approve', { gate: 'run', by: 'ben', ...(await sign('ben', h, approve, { time: elevenMinutesAgo })) })).toContain('the signature expired');

    const once = { gate: 'run', by: 'ben', ...(await sign('ben', h, approve)) };
    expect(await h.executeUpdate('approve', { args: [once] })).toMatchObject({ state: 'open', approvals: 1 });
    expect(await refused(h, 'approve', once)).toContain('duplicate vote');

    // carol approves; the command fails and the failure gate opens: ben's answer for gate "run" does not move to it.
    await h.executeUpdate('approve', { args: [{ gate: 'run', by: 'carol', ...(await sign('carol', h, { gate: 'run', decision: 'approve', by: 'carol' })) }] });
    await openGate(h, 'failure');
    const forRun = await sign('ben', h, { gate: 'run', decision: 'resolve:abort', by: 'ben' });
    expect(await refused(h, 'resolve', { gate: 'failure', action: 'abort', by: 'ben', ...forRun })).toBe('the signature is for gate "run", not "failure"');
    await h.executeUpdate('resolve', { args: [{ gate: 'failure', action: 'abort', by: 'ben', ...(await sign('ben', h, { gate: 'failure', decision: 'resolve:abort', by: 'ben' })) }] });
    await h.result().catch(() => undefined);
    await other.terminate();
  });

  it('where signatures are optional, someone with keys must still sign (the CLI does, unasked); someone without answers unsigned', async () => {
    const h = await start({ environment: 'lenient', approval: { approvers: ['ben', 'erin', 'carol'], quorum: 3 } } as Partial<FleetRunInput>);
    await openGate(h, 'run');
    const before = await eventCount(h);
    const err = await h.executeUpdate('approve', { args: [{ gate: 'run', by: 'ben' }] }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(((err as WorkflowUpdateFailedError).cause as { type?: string }).type).toBe('SignatureNeeded');
    expect(((err as WorkflowUpdateFailedError).cause as Error).message).toContain("ben has keys in force for this run (people.ben.keys): answers in their name are signed. Answer with `opsflow approve");
    expect(await eventCount(h)).toBe(before);

    // The CLI sends it unsigned, is told to sign, and signs with the agent.
    expect((await cli(['approve', h.workflowId, '--by', 'ben'])).stdout).toContain('approve: gate "run" is open (1/3 approvals)');
    expect((await cli(['approve', h.workflowId, '--by', 'erin'])).stdout).toContain('approve: gate "run" is open (2/3 approvals)');
    expect((await status(h)).decisions.map((d) => [d.by, d.key])).toEqual([
      ['ben', fingerprint('ben')],
      ['erin', undefined],
    ]);
    await h.terminate();
  });

  it('four eyes: the requester cannot approve with a valid signature of their own', async () => {
    const h = await start({ approval: { approvers: ['ben', 'carol', 'dave'], quorum: 1, fourEyes: true } } as Partial<FleetRunInput>);
    await openGate(h, 'run');
    expect(await refused(h, 'approve', { gate: 'run', by: 'dave', ...(await sign('dave', h, { gate: 'run', decision: 'approve', by: 'dave' })) })).toContain('needs a second person (four eyes)');
    const viaCli = await cli(['approve', h.workflowId, '--by', 'dave', '--key', keyFile('dave')]);
    expect(viaCli.code).toBe(1);
    expect(viaCli.stderr).toContain('four eyes');
    await h.terminate();
  });

  // The UI's "Send an Update" sends the pasted JSON as the update's one argument; so does the temporal CLI, which
  // sends it here exactly as printed.
  it('the payload `opsflow sign` prints, pasted as the update payload, is accepted', async () => {
    const h = await start({ approval: { approvers: ['ben'], quorum: 1 } } as Partial<FleetRunInput>);
    await openGate(h, 'run');
    const printed = await cli(['sign', h.workflowId, 'approve', '--gate', 'run', '--by', 'ben', '--comment', 'via the UI']);
    expect(printed.code).toBe(0);
    expect(printed.stderr).toContain('Send an Update');
    const payload = JSON.parse(printed.stdout);
    expect(payload).toMatchObject({ gate: 'run', by: 'ben', comment: 'via the UI' });
    const sent = await runTemporal(['workflow', 'update', 'execute', '--workflow-id', h.workflowId, '--name', 'approve', '--input', printed.stdout.trim(), '--output', 'json']);
    expect(sent.code, sent.stderr).toBe(0);
    expect(JSON.parse(sent.stdout)).toMatchObject({ result: { state: 'approved' } });
    await h.result();
    expect((await status(h)).decisions[0]).toMatchObject({ by: 'ben', key: fingerprint('ben'), comment: 'via the UI' });
  });

  it('a missing or unusable agent gets an error that says what to do', async () => {
    const h = await start({ approval: { approvers: ['ben'], quorum: 1 } } as Partial<FleetRunInput>);
    await openGate(h, 'run');
    const none = await cli(['approve', h.workflowId, '--by', 'ben'], { SSH_AUTH_SOCK: '' });
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('no SSH agent: SSH_AUTH_SOCK is not set');
    const dead = await cli(['approve', h.workflowId, '--by', 'ben'], { SSH_AUTH_SOCK: path.join(dir, 'no-agent.sock') });
    expect(dead.stderr).toContain('is it running?');
    const wrongKey = await cli(['approve', h.workflowId, '--by', 'carol']);
    expect(wrongKey.stderr).toContain("none of them one of carol's keys");
    await h.terminate();
  });

  it('a Slack click counts through the bridge; a forged bridge signature or a bridge vouching for someone else does not', async () => {
    const h = await start({ approval: { approvers: ['ben', 'mallory'], quorum: 1 } } as Partial<FleetRunInput>);
    await openGate(h, 'run');
    const asBridge = { gate: 'run', decision: 'approve' as const, by: 'ben', slackUser: 'U0BEN' };
    expect(await refused(h, 'approve', { gate: 'run', by: 'ben', ...(await sign('mallory', h, asBridge)) })).toBe(`key ${fingerprint('mallory')} is not the Slack bridge's (bridges.slack.keys)`);
    expect(await refused(h, 'approve', { gate: 'run', by: 'ben', ...(await sign('bridge', h, { ...asBridge, slackUser: 'U0MALLORY' })) })).toBe('the Slack bridge vouches for Slack user U0MALLORY, who is not ben (people.ben.slack is U0BEN)');

    const body = `payload=${encodeURIComponent(JSON.stringify({ type: 'block_actions', user: { id: 'U0BEN' }, channel: { id: 'C0OPS' }, actions: [{ action_id: ACTIONS.approve, value: JSON.stringify({ w: h.workflowId, g: 'run' }) }] }))}`;
    const res = await fetch(endpoint.url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...signSlackRequest(SLACK_SECRET, body) }, body });
    expect(res.status).toBe(200);
    await h.result();
    expect((await status(h)).decisions[0]).toMatchObject({ by: 'ben', key: fingerprint('bridge'), slackUser: 'U0BEN' });
    expect(slack.ephemerals.find((e) => e.user === 'U0BEN')?.text).toContain('You approved gate `run`');
  });

  it('opsflow audit re-verifies a finished run from its history, and flags a tampered copy', async () => {
    const h = await start();
    await openGate(h, 'run');
    await cli(['approve', h.workflowId, '--by', 'ben', '--comment', 'ship it']);
    await cli(['approve', h.workflowId, '--by', 'carol', '--key', keyFile('carol')]);
    await h.result();

    const audit = await cli(['audit', h.workflowId]);
    expect(audit.code).toBe(0);
    expect(audit.stdout).toContain(`approve gate run by ben: ship it\n      VERIFIED, key ${fingerprint('ben')}`);
    expect(audit.stdout).toContain(`VERIFIED, key ${fingerprint('carol')}`);
    expect(audit.stdout).toContain('every signed answer verifies');

    const exported = JSON.parse(execFileSync(findTemporalCli() as string, ['workflow', 'show', '--address', inject('temporalAddress'), '--workflow-id', h.workflowId, '--output', 'json'], { encoding: 'utf8' }));
    const copy = path.join(dir, 'history.json');
    writeFileSync(copy, JSON.stringify(exported));
    const untouched = await cli(['audit', '--history', copy]);
    expect(untouched.stdout + untouched.stderr).toContain('every signed answer verifies');
    expect(untouched.code).toBe(0);

    // Someone edits ben's comment in the exported copy.
    const accepted = exported.events.find((e: { workflowExecutionUpdateAcceptedEventAttributes?: unknown }) => e.workflowExecutionUpdateAcceptedEventAttributes);
    const arg = accepted.workflowExecutionUpdateAcceptedEventAttributes.acceptedRequest.input.args.payloads[0];
    const edited = JSON.parse(Buffer.from(arg.data, 'base64').toString('utf8'));
    expect(edited.comment).toBe('ship it');
    arg.data = Buffer.from(JSON.stringify({ ...edited, comment: 'ship it, and drop the old tables' })).toString('base64');
    writeFileSync(copy, JSON.stringify(exported));
    const tampered = await cli(['audit', '--history', copy]);
    expect(tampered.code).toBe(1);
    expect(tampered.stdout).toContain('DOES NOT VERIFY: the signature does not match this answer');
    expect(tampered.stderr).toContain('1 decision(s) do not verify');
  });
});
