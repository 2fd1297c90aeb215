// The test fleet: real sshd "hosts" on loopback, shared with the sandbox (src/sandbox/fleet.ts).
export * from '../../src/sandbox/fleet';
