import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const TASK_QUEUE = 'opsflow';

export const SA_ENVIRONMENT = defineSearchAttributeKey('OpsEnvironment', SearchAttributeType.KEYWORD);
export const SA_SERVICE = defineSearchAttributeKey('OpsService', SearchAttributeType.KEYWORD);
export const SA_RELEASE = defineSearchAttributeKey('OpsRelease', SearchAttributeType.KEYWORD);

/** Registered on the dev server by `npm start` and the test setup, and by the compose stack's namespace job. */
export const SEARCH_ATTRIBUTES = [SA_ENVIRONMENT, SA_SERVICE, SA_RELEASE] as const;
