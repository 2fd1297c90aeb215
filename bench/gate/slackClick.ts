// The Slack approval path: a click on Approve, signed exactly as Slack signs it, posted to opsflow's
// interactivity endpoint, which maps the user and sends the gate's update. Slack itself is out of reach here,
// so the endpoint's own calls (the ephemeral verdict) go to the test suite's double of the Web API.
import { parseInventory } from '../../src/config/inventory';
import { serveInteractivity } from '../../src/slack/interactivity';
import { slackClient } from '../../src/slack/settings';
import { signSlackRequest, startSlackDouble } from '../../test/support/slackDouble';
import type { ApprovalPath, GateEnv } from './approvalPaths';

const SLACK_USER = 'U0BENCH';
const SIGNING_SECRET = 'bench-signing-secret';

/** Starts the double and the endpoint once; the bench process ends them with itself. */
export async function slackClickPath(env: GateEnv): Promise<ApprovalPath> {
  const slack = await startSlackDouble();
  const inventory = parseInventory(`people:\n  ${env.approver}: { slack: ${SLACK_USER} }\n`, 'bench-people.yaml');
  const endpoint = await serveInteractivity(
    { temporal: env.client, slack: slackClient({ token: slack.token, apiUrl: slack.url }), signingSecret: SIGNING_SECRET, inventory },
    { host: '127.0.0.1', port: 0 },
  );
  return async (workflowId) => {
    const payload = { type: 'block_actions', user: { id: SLACK_USER }, channel: { id: 'C0BENCH' }, actions: [{ action_id: 'opsflow_approve', value: JSON.stringify({ w: workflowId, g: 'run' }) }] };
    const body = `payload=${encodeURIComponent(JSON.stringify(payload))}`;
    const res = await fetch(endpoint.url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...signSlackRequest(SIGNING_SECRET, body) }, body });
    const verdict = slack.ephemerals[slack.ephemerals.length - 1]?.text ?? '';
    if (res.status !== 200 || !verdict.startsWith('You approved')) throw new Error(`Slack click refused: HTTP ${res.status} ${verdict}`);
  };
}
