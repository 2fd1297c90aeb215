// customerRollout's part of the sandbox: each customer a service of the demo web app, in environment staging on
// web1 and production on web2 and web3, with a directory (releases, live symlink, pid file) and a port of its own
// on each node. `up` puts v1 live for each, as for the web service.
import path from 'node:path';
import { appPid, appPidFile, ensureWebApp, liveRelease, stopApp } from './apps';
import type { FleetHost } from './fleet';
import { customersDir, SANDBOX } from './layout';

const C = SANDBOX.customers;
export const STAGES = ['staging', 'production'] as const;

/** The customer's directory on the node (the inventory's `{customers}/<customer>`). */
const customerDir = (host: FleetHost, customer: string) => path.join(customersDir(host), customer);

/** Each stage's nodes, by name, from the web nodes `[name, host]`. */
export function stageNodes(webNodes: [string, FleetHost][], stage: (typeof STAGES)[number]): [string, FleetHost][] {
  return webNodes.filter(([name]) => C[stage].includes(name));
}

const every = (webNodes: [string, FleetHost][]) => STAGES.flatMap((stage) => stageNodes(webNodes, stage)).flatMap(([name, host]) => C.services.map(([customer, port]) => ({ name, host, customer, port, dir: customerDir(host, customer) })));

export function ensureCustomers(webNodes: [string, FleetHost][]): void {
  for (const { host, dir, port } of every(webNodes)) ensureWebApp(dir, host.address, port);
}

/** One line per customer: its port, and per stage each node's app and live release. */
export function customersStatus(webNodes: [string, FleetHost][]): string[] {
  return C.services.map(([customer, port]) => {
    const stages = STAGES.map((stage) => `${stage} ${stageNodes(webNodes, stage).map(([name, host]) => `${name} ${appPid(customerDir(host, customer)) ? 'running' : 'stopped'} ${liveRelease(customerDir(host, customer))}`).join(', ')}`);
    return `  ${customer.padEnd(8)} :${port} ${stages.join('; ')}`;
  });
}

export async function stopCustomers(webNodes: [string, FleetHost][]): Promise<string[]> {
  const stopped: string[] = [];
  for (const { name, customer, dir } of every(webNodes)) if (await stopApp(dir)) stopped.push(`${customer} on ${name}`);
  return stopped;
}

export const customersPidFiles = (webNodes: [string, FleetHost][]) => every(webNodes).map(({ dir }) => appPidFile(dir));
