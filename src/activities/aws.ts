// AWS SDK v3 clients for an inventory account: its region, credentials from a profile (~/.aws) or from named
// environment variables of the worker, else the SDK's default chain, and an endpoint other than AWS's own for
// emulators (S3 then uses path-style addressing). No logger is given to the clients: requests, and with them
// credentials, are never logged.
import { EC2Client } from '@aws-sdk/client-ec2';
import { Route53Client } from '@aws-sdk/client-route-53';
import { S3Client } from '@aws-sdk/client-s3';
import { fromIni } from '@aws-sdk/credential-providers';
import type { AwsAccount } from '../config/systems';
import { AwsConfigError } from '../common/errors';

type Credentials = { accessKeyId: string; secretAccessKey: string } | ReturnType<typeof fromIni>;

function credentials(account: AwsAccount): Credentials | undefined {
  if (account.accessKeyIdEnv || account.secretAccessKeyEnv) {
    const names = [account.accessKeyIdEnv, account.secretAccessKeyEnv];
    const missing = names.filter((n) => !n || !process.env[n]);
    if (missing.length) {
      // Names only: the values are secrets.
      throw new AwsConfigError(`AWS account in ${account.region} takes its keys from the environment: ${missing.map((n) => (n ? `set ${n}` : 'name both accessKeyIdEnv and secretAccessKeyEnv')).join(', ')} for the worker`);
    }
    return { accessKeyId: process.env[names[0] as string] as string, secretAccessKey: process.env[names[1] as string] as string };
  }
  if (account.profile) return fromIni({ profile: account.profile, ...(account.credentialsFile ? { filepath: account.credentialsFile } : {}) });
  return undefined;
}

/** What every client of this account is built from. */
export function awsClientConfig(account: AwsAccount) {
  return {
    region: account.region,
    credentials: credentials(account),
    ...(account.endpoint ? { endpoint: account.endpoint } : {}),
  };
}

function cached<C>(build: (account: AwsAccount) => C): (account: AwsAccount) => C {
  const clients = new WeakMap<AwsAccount, C>();
  return (account) => {
    let client = clients.get(account);
    if (!client) {
      client = build(account);
      clients.set(account, client);
    }
    return client;
  };
}

export const s3Client = cached((account) => new S3Client({ ...awsClientConfig(account), forcePathStyle: !!account.endpoint }));
export const route53Client = cached((account) => new Route53Client(awsClientConfig(account)));
export const ec2Client = cached((account) => new EC2Client(awsClientConfig(account)));
