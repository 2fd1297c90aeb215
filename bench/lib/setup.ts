// Imported first by bench/run.ts, before anything loads opsflow's logger or the Temporal runtime: the bench's
// output is its tables, so opsflow logs warnings only, and the runtime is installed quiet (see testSupport.ts).
process.env.OPSFLOW_LOG_LEVEL ??= 'warn';
// Workers read Slack settings from the environment; thousands of bench runs must not post to a real channel.
delete process.env.SLACK_BOT_TOKEN;
// eslint-disable-next-line @typescript-eslint/no-require-imports -- must run after the line above, not hoisted
require('./testSupport');
