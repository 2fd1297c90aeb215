// Announcements of a run's start, success, failure and rollback. Until a chat notifier is configured they are
// structured lines in the worker's log (`"announce":{…}`), where operators already look.
import { log } from '../common/log';

export interface Announcement {
  workflow: string;
  workflowId: string;
  event: 'started' | 'succeeded' | 'failed';
  text: string;
  environment?: string;
  service?: string;
  release?: string;
}

export function createNotifyActivities() {
  return {
    async announce(announcement: Announcement): Promise<void> {
      log.info({ announce: announcement }, announcement.text);
    },
  };
}
