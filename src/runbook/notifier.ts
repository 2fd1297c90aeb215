// Slack posts of a run (announcements, gate messages, replies), as a queue that never holds the run up.
import { condition, log, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { HEARTBEAT_TIMEOUT, retry } from '../workflows/activityOptions';
import type { Announcement } from '../activities/notify';
import type { RunRef } from '../slack/blocks';
import { describeError } from './failure';
import type { GateRecord, SlackPlace } from './protocol';

// Notifying is best effort: Slack may be slow or rate limited (the client waits out Retry-After), so a post gets
// time and a few tries, and the run never waits for it; it heartbeats, so a post lost with its worker is retried
// in seconds.
const slack = proxyActivities<Activities>({ startToCloseTimeout: '2m', heartbeatTimeout: HEARTBEAT_TIMEOUT, retry: retry({ initialInterval: '2s', maximumAttempts: 3 }) });

export class Notifier {
  private queue: Promise<void> = Promise.resolve();
  private pending = 0;
  private runThread?: SlackPlace;

  /** `channel` undefined with `notify` set: the inventory's channel for the environment. */
  constructor(
    private readonly run: () => RunRef,
    private readonly notify: { channel?: string } | undefined,
  ) {}

  /**
   * Queues a post. The run goes on at once; posts go out one after another in the background (so the run's
   * thread exists before its replies), and a post that fails after its retries is logged, never thrown.
   */
  private enqueue(what: string, task: () => Promise<void>): void {
    this.pending++;
    this.queue = this.queue
      .then(task)
      .catch((err) => log.warn('notification failed', { what, error: describeError(err).message }))
      .finally(() => {
        this.pending--;
      });
  }

  /** Tells the run's audience, in one Slack thread per run. */
  announce(event: Announcement['event'], text: string): void {
    this.enqueue(`announce ${event}`, async () => {
      const place = await slack.announce({ ...this.run(), event, text, channel: this.notify?.channel, thread: this.runThread });
      if (place && !this.runThread) this.runThread = place;
    });
  }

  private postsGates(gate: GateRecord): boolean {
    return gate.channel !== undefined || this.notify !== undefined;
  }

  postGate(gate: GateRecord): void {
    if (!this.postsGates(gate)) return;
    this.enqueue(`post gate ${gate.id}`, async () => {
      gate.slack = (await slack.postGate({ run: this.run(), gate, channel: gate.channel ?? this.notify?.channel, thread: this.runThread })) ?? undefined;
      // Answers that came in while the post was queued are shown at once.
      if (gate.slack && (gate.votes.length || gate.state !== 'open')) await slack.updateGate({ run: this.run(), gate, place: gate.slack });
    });
  }

  /** Shows votes and the decision on the gate's Slack message; a closed gate loses its buttons. */
  refreshGate(gate: GateRecord): void {
    if (!this.postsGates(gate)) return;
    this.enqueue(`update gate ${gate.id}`, async () => {
      if (gate.slack) await slack.updateGate({ run: this.run(), gate, place: gate.slack });
    });
  }

  replyOnGate(gate: GateRecord, text: string): void {
    if (!this.postsGates(gate)) return;
    this.enqueue(`reply on gate ${gate.id}`, async () => {
      if (gate.slack) await slack.gateReply({ place: gate.slack, text });
    });
  }

  /** Lets queued posts go out before the run ends, for a bounded time: the run's end does not wait on Slack. */
  async flush(): Promise<void> {
    // Checked first: condition() with a timeout starts a timer even when there is nothing to wait for.
    if (this.pending > 0) await condition(() => this.pending === 0, '10s');
  }
}
