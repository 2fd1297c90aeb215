// scripts/cluster.sh as docs/operations.md promises it: a Temporal server on a PostgreSQL of its own, with the
// namespace, opsflow's search attributes and the Web UI, brought up idempotently; runs survive `down` and `up`.
// A cluster of its own, in a temporary directory on free ports (other files may use the suite's).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Client as PgClient } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SEARCH_ATTRIBUTES } from '../src/common/constants';
import type { RunStatus } from '../src/runbook/protocol';
import type { fleetRun } from '../src/workflows/fleetRun';
import { clusterAt, freeClusterPorts, type Cluster } from './support/clusterControl';
import { ROOT, startWorker, unique, waitFor, writeInventory } from './support/harness';

const dir = mkdtempSync(path.join(tmpdir(), 'opsflow-cluster-'));
let cluster: Cluster;

function script(command: string, env: Record<string, string> = {}) {
  const settings = cluster.settings;
  return spawnSync('bash', [path.join(ROOT, 'scripts/cluster.sh'), command], {
    encoding: 'utf8',
    timeout: 300_000,
    env: {
      ...process.env,
      OPSFLOW_CLUSTER_DIR: settings.dir,
      OPSFLOW_CLUSTER_PORT: String(settings.port),
      OPSFLOW_CLUSTER_UI_PORT: String(settings.uiPort),
      OPSFLOW_CLUSTER_PG_PORT: String(settings.pgPort),
      ...env,
    },
  });
}

const pids = () => ['server', 'ui'].map((name) => readFileSync(path.join(dir, `${name}.pid`), 'utf8').trim());

async function sql<T>(database: string, query: string): Promise<T[]> {
  const db = new PgClient({ host: '127.0.0.1', port: cluster.settings.pgPort, user: 'temporal', password: readFileSync(path.join(dir, 'postgres.password'), 'utf8'), database });
  await db.connect();
  try {
    return (await db.query(query)).rows as T[];
  } finally {
    await db.end();
  }
}

beforeAll(async () => {
  cluster = clusterAt({ dir, ...(await freeClusterPorts()) });
  // The first `up` on a fresh machine builds the server from the Go module proxy.
  await cluster.up();
}, 900_000);
afterAll(async () => {
  await cluster?.down();
  rmSync(dir, { recursive: true, force: true });
}, 120_000);

describe('scripts/cluster.sh', () => {
  it('serves the namespace with opsflow\'s search attributes, reports it in `status`, and `up` again changes nothing', async () => {
    const connection = await Connection.connect({ address: cluster.address });
    try {
      const { keys } = await connection.operatorService.listSearchAttributes({ namespace: 'default' }).then((r) => ({ keys: r.customAttributes ?? {} }));
      for (const attribute of SEARCH_ATTRIBUTES) expect(keys[attribute.name], attribute.name).toBe(2 /* INDEXED_VALUE_TYPE_KEYWORD */);
    } finally {
      await connection.close();
    }
    const before = pids();
    const again = script('up');
    expect(again.status, again.stderr).toBe(0);
    expect(pids()).toEqual(before);
    const status = script('status');
    expect(status.status).toBe(0);
    expect(status.stdout).toContain(`${cluster.address} (namespace default), pid ${before[0]}, SERVING`);
    expect(status.stdout).toContain(`${cluster.uiUrl}, pid ${before[1]}`);
  });

  it('keeps its state in its own PostgreSQL, with 4 history shards', async () => {
    expect(await sql<{ n: string }>('temporal', 'SELECT count(*) AS n FROM shards')).toEqual([{ n: '4' }]);
    expect(await sql('temporal_visibility', "SELECT 1 FROM information_schema.tables WHERE table_name = 'executions_visibility'")).toHaveLength(1);
  });

  it('serves the Web UI on loopback, against this server', async () => {
    const res = await fetch(`${cluster.uiUrl}/api/v1/namespaces`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { namespaces: { namespaceInfo: { name: string } }[] };
    expect(body.namespaces.map((n) => n.namespaceInfo.name)).toContain('default');
    expect(readFileSync(path.join(dir, 'ui/opsflow.yaml'), 'utf8')).toMatch(/^host: 127\.0\.0\.1$/m);
  });

  it('keeps a run waiting at its gate through `down` and `up`; it then completes', async () => {
    const inventory = writeInventory();
    const queue = unique('cluster');
    let env = await TestWorkflowEnvironment.createFromExistingServer({ address: cluster.address });
    let worker = await startWorker(env, inventory, queue);
    const h = await env.client.workflow.start<typeof fleetRun>('fleetRun', {
      taskQueue: queue,
      workflowId: unique('cluster-gate'),
      args: [{ environment: 'test', target: { group: 'web' }, command: ['uname', '-s'], approval: { approvers: ['alice'] } }],
    });
    await waitFor(async () => (await h.query<RunStatus>('status')).state === 'waiting', 'the gate to open', 60_000);
    await worker.stop();
    await env.teardown();

    await cluster.down();
    expect(script('status').status).toBe(1);
    await cluster.up();

    env = await TestWorkflowEnvironment.createFromExistingServer({ address: cluster.address });
    worker = await startWorker(env, inventory, queue);
    try {
      const run = env.client.workflow.getHandle<typeof fleetRun>(h.workflowId);
      expect((await run.query<RunStatus>('status')).state).toBe('waiting');
      await run.executeUpdate('approve', { args: [{ by: 'alice' }] });
      const result = await run.result();
      expect(result.ok).toBe(true);
      expect(result.hosts.map((r) => r.stdout.trim())).toEqual(['Linux', 'Linux', 'Linux']);
      // Found by its search attribute in the visibility store on PostgreSQL, as `opsflow list --env test` finds it.
      const query = `OpsEnvironment = 'test' AND WorkflowId = '${h.workflowId}' AND ExecutionStatus = 'Completed'`;
      const listed = async () => {
        for await (const found of env.client.workflow.list({ query })) return found.workflowId;
      };
      expect(await waitFor(listed, 'the completed run in the visibility store', 30_000)).toBe(h.workflowId);
    } finally {
      await worker.stop();
      await env.teardown();
    }
  }, 300_000);

  it('is documented with its own defaults and versions', () => {
    const source = readFileSync(path.join(ROOT, 'scripts/cluster.sh'), 'utf8');
    const operations = readFileSync(path.join(ROOT, 'docs/operations.md'), 'utf8');
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const port = (name: string) => new RegExp(`port_setting ${name} (\\d+)`).exec(source)?.[1];
    for (const name of ['OPSFLOW_CLUSTER_PORT', 'OPSFLOW_CLUSTER_UI_PORT', 'OPSFLOW_CLUSTER_PG_PORT']) {
      expect(port(name), name).toBeDefined();
      expect(operations, name).toContain(`| \`${name}\` | \`${port(name)}\` |`);
    }
    expect(source).toContain('dir=${OPSFLOW_CLUSTER_DIR:-$root/data/cluster}');
    expect(operations).toContain('| `OPSFLOW_CLUSTER_DIR` | `./data/cluster` |');
    expect(readme).toContain(`\`127.0.0.1:${port('OPSFLOW_CLUSTER_PORT')}\``);
    expect(readme).toContain(`\`http://127.0.0.1:${port('OPSFLOW_CLUSTER_UI_PORT')}\``);
    const version = /^TEMPORAL_SERVER_VERSION=(\S+)$/m.exec(source)?.[1];
    expect(readme).toContain(`Temporal server ${version}`);
    expect(operations).toContain(`Temporal server ${version}`);
  });

  it('refuses a bad setting, naming it, before it creates or starts anything', () => {
    const elsewhere = path.join(dir, 'never');
    const bad = script('up', { OPSFLOW_CLUSTER_DIR: elsewhere, OPSFLOW_CLUSTER_PG_PORT: '55x' });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('OPSFLOW_CLUSTER_PG_PORT must be a port number from 1024 to 65535, not "55x"');
    // Temporal keeps ports in a smallint column: a higher one would fail only once the server starts.
    const high = script('up', { OPSFLOW_CLUSTER_DIR: elsewhere, OPSFLOW_CLUSTER_PORT: '40000' });
    expect(high.status).toBe(1);
    expect(high.stderr).toContain('OPSFLOW_CLUSTER_PORT must be from 1324 to 32757');
    expect(existsSync(elsewhere)).toBe(false);
  });
});
