import pino from 'pino';

// Anything that may carry a credential is censored by path, so a careless `log.info({ conn })` cannot leak it.
const REDACT = [
  '*.privateKey', '*.passphrase', '*.password', '*.token', '*.apiKey', '*.secret',
  '*.*.privateKey', '*.*.passphrase', '*.*.password', '*.*.token', '*.*.apiKey', '*.*.secret',
  'privateKey', 'passphrase', 'password', 'token', 'apiKey', 'secret',
];

export const log = pino(
  {
    level: process.env.OPSFLOW_LOG_LEVEL ?? 'info',
    base: undefined,
    redact: { paths: REDACT, censor: '[redacted]' },
  },
  pino.destination({ fd: process.env.OPSFLOW_LOG_FD === '2' ? 2 : 1, sync: true }),
);
