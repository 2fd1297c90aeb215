import type { Client } from '@temporalio/client';
import type { Inventory } from '../config/inventory';
import { bridgeSignerFromEnv } from './bridge';
import { serveInteractivity } from './interactivity';
import { slackClient, slackFromEnv } from './settings';

/**
 * The interactivity endpoint as configured by the environment (SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET,
 * OPSFLOW_SLACK_HOST, OPSFLOW_SLACK_PORT); undefined when Slack is not configured.
 */
export async function startSlackEndpoint(temporal: Client, inventory: Inventory): Promise<{ url: string; close(): Promise<void> } | undefined> {
  const settings = slackFromEnv();
  if (!settings) return undefined;
  if (!settings.signingSecret) throw new Error('SLACK_BOT_TOKEN is set but SLACK_SIGNING_SECRET is not: the interactivity endpoint cannot verify clicks');
  return serveInteractivity(
    { temporal, slack: slackClient(settings), signingSecret: settings.signingSecret, inventory, bridge: bridgeSignerFromEnv(inventory) },
    { host: process.env.OPSFLOW_SLACK_HOST ?? '127.0.0.1', port: Number(process.env.OPSFLOW_SLACK_PORT ?? 3000) },
  );
}
