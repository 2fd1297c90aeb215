// Slack is configured by the worker's environment only: the bot token and signing secret never travel in
// workflow input, so they never reach history.
import { LogLevel, WebClient } from '@slack/web-api';

export interface SlackSettings {
  token: string;
  signingSecret?: string;
  /** Another Web API base URL (a proxy, or the test suite's double). */
  apiUrl?: string;
}

export function slackFromEnv(env: NodeJS.ProcessEnv = process.env): SlackSettings | undefined {
  if (!env.SLACK_BOT_TOKEN) return undefined;
  return { token: env.SLACK_BOT_TOKEN, signingSecret: env.SLACK_SIGNING_SECRET || undefined, apiUrl: env.SLACK_API_URL || undefined };
}

export function slackClient(settings: SlackSettings): WebClient {
  return new WebClient(settings.token, {
    slackApiUrl: settings.apiUrl,
    logLevel: LogLevel.ERROR,
    // Rate limits are waited out as Slack's Retry-After says; other failures get a few quick tries, then the
    // activity's own retry policy takes over.
    rejectRateLimitedCalls: false,
    retryConfig: { retries: 3, factor: 2, minTimeout: 500, maxTimeout: 5_000 },
  });
}
