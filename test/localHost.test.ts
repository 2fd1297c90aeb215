// What a local host (`connection: local`) refuses, as docs/inventory.md says: steps that need an SSH channel (data
// tools run `on` a host) and rollingUpgrade's reboot of the worker's own machine. Refused before anything runs.
import { describe, expect, it } from 'vitest';
import { createUpgradeActivities } from '../src/activities/upgrade';
import { SshPool } from '../src/activities/ssh/pool';
import { Misconfigured } from '../src/common/errors';
import { Inventory } from '../src/config/inventory';

const inventory = Inventory.builtIn();
const localhost = inventory.connection('local', 'localhost');

describe('a local host', () => {
  it('refuses a step that needs an SSH channel to it, naming the host', async () => {
    const ssh = new SshPool();
    const refused = ssh.with(localhost, async () => 'ran');
    await expect(refused).rejects.toBeInstanceOf(Misconfigured);
    await expect(refused).rejects.toThrow('localhost is a local host (connection: local): this step needs an SSH connection to it');
    expect(await ssh.shell(localhost, (shell) => shell.run('echo ran').then((r) => r.stdout.toString()))).toBe('ran\n');
  });

  it("refuses rollingUpgrade's reboot of the worker's own machine", async () => {
    const acts = createUpgradeActivities({ inventory, ssh: new SshPool() });
    const refused = acts.requestReboot({ environment: 'local', host: 'localhost', command: ['sh', '-c', 'exit 99'], sudo: false });
    await expect(refused).rejects.toBeInstanceOf(Misconfigured);
    await expect(refused).rejects.toThrow("localhost is a local host (the worker's own machine): rollingUpgrade cannot reboot it; leave reboot out");
  });
});
