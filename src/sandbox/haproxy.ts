// HAProxy in front of a web service's nodes, with its runtime API socket: the test suite runs one per test file,
// the sandbox one for good. Debian's haproxy binary.
import net from 'node:net';
import { parseStat } from '../activities/haproxy';

export interface HaproxyServer {
  name: string;
  address: string;
  port: number;
}

/** haproxy.cfg: a frontend on 127.0.0.1:port, one backend health-checked on GET /health, the admin socket. */
export function haproxyConfig(opts: { backend: string; servers: HaproxyServer[]; port: number; socket: string }): string {
  return `global
  stats socket ${opts.socket} mode 666 level admin
  maxconn 256
defaults
  mode http
  timeout connect 1s
  timeout client 10s
  timeout server 10s
  retries 3
  option redispatch
frontend fe
  bind 127.0.0.1:${opts.port}
  default_backend ${opts.backend}
backend ${opts.backend}
  balance roundrobin
  option httpchk GET /health
  http-check expect status 200
  default-server inter 200ms fall 2 rise 2
${opts.servers.map((s) => `  server ${s.name} ${s.address}:${s.port} check`).join('\n')}
`;
}

/** One runtime API command over the admin socket. */
export function adminCommand(socket: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const conn = net.connect(socket, () => conn.end(`${command}\n`));
    conn.on('data', (d) => (out += d.toString()));
    conn.on('end', () => resolve(out));
    conn.on('error', reject);
  });
}

/** Each server of the backend and its state (`UP` is in rotation; `MAINT`, `DRAIN` not), without HAProxy's check count ("UP 1/2"). */
export async function backendServers(socket: string, backend: string): Promise<Record<string, string>> {
  const stats = parseStat(await adminCommand(socket, 'show stat')).filter((st) => st.backend === backend);
  return Object.fromEntries(stats.map((st) => [st.server, st.status.split(' ')[0]]));
}
