// Announcements and gate messages. With Slack configured (SLACK_BOT_TOKEN) they go to a channel, one thread per
// run; every announcement is also a structured line in the worker's log (`"announce":{…}`). Without Slack,
// nothing tries to post.
import type { WebClient } from '@slack/web-api';
import { log } from '../common/log';
import type { Inventory } from '../config/inventory';
import { gateMessage, type RunRef } from '../slack/blocks';
import type { GateRecord, SlackPlace } from '../runbook/protocol';

export interface Announcement extends RunRef {
  event: 'started' | 'phase' | 'succeeded' | 'failed' | 'rollback' | 'cancelled';
  text: string;
}

export function createNotifyActivities(deps: { inventory: Inventory; slack?: WebClient }) {
  const { inventory, slack } = deps;

  /** The run's channel: the one it names, else the inventory's for its environment. */
  function channelFor(run: RunRef, explicit?: string): string | undefined {
    return explicit ?? (run.environment ? inventory.notifyChannel(run.environment) : undefined);
  }

  async function post(channel: string, text: string, blocks?: unknown[], thread?: SlackPlace): Promise<SlackPlace> {
    const res = await (slack as WebClient).chat.postMessage({ channel, text, ...(blocks ? { blocks: blocks as never } : {}), ...(thread?.channel === channel ? { thread_ts: thread.ts } : {}) });
    return { channel: res.channel as string, ts: res.ts as string };
  }

  return {
    async announce(input: Announcement & { channel?: string; thread?: SlackPlace }): Promise<SlackPlace | null> {
      const { channel: explicit, thread, ...announcement } = input;
      log.info({ announce: announcement }, announcement.text);
      const channel = channelFor(announcement, explicit);
      if (!slack || !channel) return null;
      return post(channel, `${announcement.workflow} ${announcement.workflowId}: ${announcement.text}`, undefined, thread);
    },

    async postGate(input: { run: RunRef; gate: GateRecord; channel?: string; thread?: SlackPlace }): Promise<SlackPlace | null> {
      const channel = channelFor(input.run, input.channel);
      if (!slack || !channel) return null;
      const { text, blocks } = gateMessage(input.run, input.gate);
      const place = await post(channel, text, blocks);
      // The run's thread points at the gate, so the story of the run stays in one place.
      if (input.thread?.channel === channel) await post(channel, `Waiting at gate \`${input.gate.id}\`: ${input.gate.prompt}`, undefined, input.thread);
      return place;
    },

    async updateGate(input: { run: RunRef; gate: GateRecord; place: SlackPlace }): Promise<void> {
      if (!slack) return;
      const { text, blocks } = gateMessage(input.run, input.gate);
      await slack.chat.update({ channel: input.place.channel, ts: input.place.ts, text, blocks: blocks as never });
    },

    async gateReply(input: { place: SlackPlace; text: string }): Promise<void> {
      if (!slack) return;
      await post(input.place.channel, input.text, undefined, input.place);
    },
  };
}
