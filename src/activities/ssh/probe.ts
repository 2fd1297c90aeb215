import { Client } from 'ssh2';

/** The host key a server presents, read from a handshake that is broken off before anything is sent. */
export function presentedHostKey(address: string, port: number, timeoutMs = 5_000): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const client = new Client();
    let key: Buffer | undefined;
    const done = () => {
      client.end();
      resolve(key);
    };
    client.once('error', done);
    client.once('close', done);
    client.connect({
      host: address,
      port,
      username: 'opsflow-host-key-probe',
      readyTimeout: timeoutMs,
      hostVerifier: (presented: Buffer) => {
        key = presented;
        return false;
      },
    });
  });
}
