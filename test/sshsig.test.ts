// The SSHSIG verifier the update validator runs, against what OpenSSH itself writes and reads: signatures made by
// `ssh-keygen -Y sign` verify, a flipped bit anywhere does not, and ours pass `ssh-keygen -Y check-novalidate`.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseInventory } from '../src/config/inventory';
import { checkAnswerSignature, SignatureRefused, timeProblem, verifyAnswer } from '../src/runbook/signatures/check';
import { canonicalMessage, SIGNATURE_NAMESPACE } from '../src/runbook/signatures/message';
import { fileSigner, signClaim } from '../src/runbook/signatures/signer';
import { base64Decode, base64Encode, parsePublicKey, parseSshsig, verifySshsig } from '../src/runbook/signatures/sshsig';

const dir = mkdtempSync(path.join(tmpdir(), 'opsflow-sshsig-'));
const KEYS = { ed25519: ['-t', 'ed25519'], 'ecdsa-p256': ['-t', 'ecdsa', '-b', '256'] } as const;
for (const [name, args] of Object.entries(KEYS)) execFileSync('ssh-keygen', ['-q', ...args, '-N', '', '-C', name, '-f', path.join(dir, name)]);
const message = new TextEncoder().encode('{"opsflow":"gate-answer/1","by":"ben"}');
writeFileSync(path.join(dir, 'message'), message);

/** Flips one bit of the armored signature's binary content. */
function flipBit(armored: string, byte: number): string {
  const lines = armored.trim().split('\n');
  const blob = base64Decode(lines.slice(1, -1).join(''));
  blob[byte] ^= 0x01;
  return [lines[0], base64Encode(blob), lines[lines.length - 1]].join('\n');
}

describe('SSHSIG verification', () => {
  for (const name of Object.keys(KEYS)) {
    it(`accepts ssh-keygen -Y sign signatures from ${name} keys, with the fingerprint ssh-keygen prints, and refuses flipped bits`, () => {
      const armored = execFileSync('ssh-keygen', ['-Y', 'sign', '-n', SIGNATURE_NAMESPACE, '-f', path.join(dir, name)], { input: message, encoding: 'utf8', stdio: ['pipe', 'pipe', 'ignore'] });
      const sig = parseSshsig(armored);
      expect(sig.namespace).toBe(SIGNATURE_NAMESPACE);
      expect(sig.publicKey.fingerprint).toBe(parsePublicKey(readFileSync(path.join(dir, `${name}.pub`), 'utf8')).fingerprint);
      expect(execFileSync('ssh-keygen', ['-l', '-f', path.join(dir, `${name}.pub`)], { encoding: 'utf8' })).toContain(sig.publicKey.fingerprint);
      expect(verifySshsig(sig, message)).toBe(true);

      const flippedMessage = message.slice();
      flippedMessage[5] ^= 0x01;
      expect(verifySshsig(sig, flippedMessage)).toBe(false);
      // The last bytes are the signature itself; a bit there changes r, s or the ed25519 signature.
      const size = base64Decode(armored.trim().split('\n').slice(1, -1).join('')).length;
      for (const byte of [size - 1, size - 20, size - 40]) {
        const flipped = flipBit(armored, byte);
        let verdict: boolean;
        try {
          verdict = verifySshsig(parseSshsig(flipped), message);
        } catch {
          verdict = false; // a flip that breaks the encoding is refused as unreadable
        }
        expect(verdict, `bit flipped in byte ${byte}`).toBe(false);
      }
    });

    it(`signs with ${name} key files as ssh-keygen -Y check-novalidate accepts`, async () => {
      const pub = readFileSync(path.join(dir, `${name}.pub`), 'utf8');
      const claim = { namespace: 'default', workflowId: 'w', runId: 'r', gate: 'promote', decision: 'approve' as const, by: 'ben', comment: 'ok', time: new Date().toISOString(), nonce: 'n0nce-123' };
      const armored = await signClaim(fileSigner(path.join(dir, name), [pub], "ben's keys"), claim);
      writeFileSync(path.join(dir, 'ours.sig'), armored);
      const out = execFileSync('ssh-keygen', ['-Y', 'check-novalidate', '-n', SIGNATURE_NAMESPACE, '-s', path.join(dir, 'ours.sig')], { input: canonicalMessage(claim), encoding: 'utf8' });
      expect(out).toContain('Good "opsflow-gate" signature');
    });
  }

  it('refuses another namespace, a personal signature carrying a group, an edited answer where signatures are optional, a clock over 2 minutes ahead, and an inventory key it cannot verify', () => {
    const run = { namespace: 'default', workflowId: 'w', runId: 'r' };
    const answer = { gate: 'promote', decision: 'approve' as const, by: 'ben', comment: '', time: new Date().toISOString(), nonce: 'n0nce-123' };
    const signers = { signed: 'required' as const, people: { ben: { keys: [readFileSync(path.join(dir, 'ed25519.pub'), 'utf8')] } }, slackBridge: [] };
    const sign = (namespace: string) => execFileSync('ssh-keygen', ['-Y', 'sign', '-n', namespace, '-f', path.join(dir, 'ed25519')], { input: canonicalMessage({ ...run, ...answer }), encoding: 'utf8', stdio: ['pipe', 'pipe', 'ignore'] });
    expect(verifyAnswer({ ...answer, signature: sign(SIGNATURE_NAMESPACE) }, run, signers).key).toMatch(/^SHA256:/);
    expect(() => verifyAnswer({ ...answer, signature: sign('file') }, run, signers)).toThrow('the signature is for namespace "file", not "opsflow-gate"');
    // Garbage is a refusal naming the problem, never another kind of error (a signal handler must not throw).
    expect(() => verifyAnswer({ ...answer, signature: 'nonsense' }, run, signers)).toThrow(SignatureRefused);
    expect(() => verifyAnswer({ ...answer, signature: '-----BEGIN SSH SIGNATURE-----\nU1NIU0lHAAAAAQ==\n-----END SSH SIGNATURE-----' }, run, signers)).toThrow('unreadable signature: signature is truncated');
    // Only the Slack bridge vouches for group membership.
    expect(() => verifyAnswer({ ...answer, group: 'S0ONCALL', signature: sign(SIGNATURE_NAMESPACE) }, run, signers)).toThrow('only the Slack bridge vouches for Slack group membership');
    // Where signatures are optional, an unsigned answer passes and a signed one is still verified.
    const gate = { id: 'promote', openedAt: answer.time, fourEyes: false };
    const ctx = { signers: { ...signers, signed: 'optional' as const, run }, gate, gates: ['promote'], now: Date.parse(answer.time), nonceUsed: () => false };
    expect(checkAnswerSignature({ gate: 'promote', decision: 'approve', by: 'ben' }, ctx)).toBeUndefined();
    expect(() => checkAnswerSignature({ ...answer, comment: 'edited', signature: sign(SIGNATURE_NAMESPACE) }, ctx)).toThrow('the signature does not match this answer');
    // Clocks may differ by two minutes, no more.
    expect(timeProblem(new Date(Date.parse(answer.time) + 3 * 60_000).toISOString(), gate, Date.parse(answer.time))).toContain('from the future');
    expect(timeProblem(new Date(Date.parse(answer.time) + 60_000).toISOString(), gate, Date.parse(answer.time))).toBeUndefined();
    execFileSync('ssh-keygen', ['-q', '-t', 'rsa', '-b', '2048', '-N', '', '-f', path.join(dir, 'rsa')]);
    const rsa = readFileSync(path.join(dir, 'rsa.pub'), 'utf8').trim();
    expect(() => parseInventory(`people:\n  ben:\n    keys: ["${rsa}"]\n`, 'inv.yaml')).toThrow(/people\.ben\.keys\.0: an OpenSSH public key line/);
  });
});
