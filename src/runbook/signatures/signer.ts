// Signing gate answers on the operator's side (Node only: the CLI and the Slack bridge, never workflow code):
// with a key held by the SSH agent, or with a private key file, producing what `ssh-keygen -Y sign` would.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { p256 } from '@noble/curves/p256';
import { OpenSSHAgent, utils, type ParsedKey } from 'ssh2';
import type { SignedFields } from './check';
import { canonicalMessage, SIGNATURE_NAMESPACE, type AnswerClaim } from './message';
import { armorSshsig, ecdsaSignature, parsePublicKey, parsePublicKeyBlob, signatureBlob, signedData, type PublicKey } from './sshsig';

/** A key that can sign: its public half and a function returning the signature (ed25519 bytes, or SSH's r, s). */
export interface KeySigner {
  publicKey: PublicKey;
  sign(data: Uint8Array): Promise<Uint8Array>;
}

/** Signing is not possible as asked; the message says what to do. */
export class SigningError extends Error {}

const fingerprints = (lines: string[]) => lines.map((l) => parsePublicKey(l).fingerprint);

/** Whose keys `allowed` are, for messages: a person's. */
export const personsKeys = (by: string) => `${by}'s keys (people.${by}.keys)`;

/**
 * A key in the SSH agent at `socket` that is one of `allowed` (OpenSSH public key lines, `whose` says whose
 * in messages).
 */
export async function agentSigner(allowed: string[], whose: string, socket = process.env.SSH_AUTH_SOCK): Promise<KeySigner> {
  if (!socket) throw new SigningError('no SSH agent: SSH_AUTH_SOCK is not set. Start one and add your key (eval "$(ssh-agent)"; ssh-add ~/.ssh/id_ed25519), or sign with --key FILE');
  const agent = new OpenSSHAgent(socket);
  const identities = await new Promise<ParsedKey[]>((resolve, reject) =>
    agent.getIdentities((err, keys) => (err ? reject(new SigningError(`cannot use the SSH agent at ${socket} (${err.message}): is it running? Start one (eval "$(ssh-agent)"; ssh-add your key), or sign with --key FILE`)) : resolve((keys ?? []) as ParsedKey[]))),
  );
  const wanted = new Set(fingerprints(allowed));
  for (const identity of identities) {
    let publicKey: PublicKey;
    try {
      publicKey = parsePublicKeyBlob(new Uint8Array(identity.getPublicSSH()));
    } catch {
      continue; // a key type signatures do not support (RSA, security keys)
    }
    if (!wanted.has(publicKey.fingerprint)) continue;
    return {
      publicKey,
      sign: (data) =>
        new Promise((resolve, reject) =>
          // The agent returns the signature without its type: ed25519's 64 bytes, or ECDSA's mpint r, mpint s.
          agent.sign(identity, Buffer.from(data), (err, sig) => (err ? reject(new SigningError(`the SSH agent refused to sign: ${err.message}`)) : resolve(new Uint8Array(sig as Buffer)))),
        ),
    };
  }
  throw new SigningError(
    `the SSH agent has ${identities.length ? `${identities.length} key(s), none of them` : 'no keys, so none'} one of ${whose}: ${[...wanted].join(', ')}. ssh-add that key, or sign with --key FILE`,
  );
}

/** A private key file (OpenSSH or PEM); it must be one of `allowed`. */
export function fileSigner(file: string, allowed: string[], whose: string, passphrase?: string): KeySigner {
  let text: Buffer;
  try {
    text = readFileSync(file);
  } catch (err) {
    throw new SigningError(`cannot read key ${file}: ${(err as Error).message}`);
  }
  const parsed = utils.parseKey(text, passphrase);
  if (parsed instanceof Error) {
    const hint = /passphrase/i.test(parsed.message) ? ': it is encrypted, so add it to your SSH agent (ssh-add) and sign without --key' : '';
    throw new SigningError(`cannot use key ${file}: ${parsed.message}${hint}`);
  }
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  const publicKey = parsePublicKeyBlob(new Uint8Array(key.getPublicSSH()));
  if (!fingerprints(allowed).includes(publicKey.fingerprint)) throw new SigningError(`key ${file} (${publicKey.fingerprint}) is not one of ${whose} in the inventory`);
  return {
    publicKey,
    async sign(data) {
      const sig = key.sign(Buffer.from(data));
      if (sig instanceof Error) throw new SigningError(`cannot sign with ${file}: ${sig.message}`);
      if (publicKey.type === 'ssh-ed25519') return new Uint8Array(sig);
      // Node signs ECDSA in DER; SSH wants r and s as mpints.
      const { r, s } = p256.Signature.fromDER(new Uint8Array(sig));
      const be = (n: bigint) => Uint8Array.from(Buffer.from(n.toString(16).padStart(64, '0'), 'hex'));
      return ecdsaSignature(be(r), be(s));
    },
  };
}

/** The armored SSHSIG of an answer, as `ssh-keygen -Y sign -n opsflow-gate` writes it. */
export async function signClaim(signer: KeySigner, claim: AnswerClaim): Promise<string> {
  const raw = await signer.sign(signedData(SIGNATURE_NAMESPACE, canonicalMessage(claim)));
  return armorSshsig(signer.publicKey.blob, SIGNATURE_NAMESPACE, signatureBlob(signer.publicKey.type, raw));
}

/** What a signed answer adds to its payload: signed now, with a fresh nonce, for this run. */
export async function signAnswer(signer: KeySigner, answer: Omit<AnswerClaim, 'time' | 'nonce'>): Promise<Required<Pick<SignedFields, 'signature' | 'time' | 'nonce' | 'runId'>> & Pick<SignedFields, 'slackUser'>> {
  const claim = { ...answer, time: new Date().toISOString(), nonce: randomBytes(12).toString('base64url') };
  const signature = await signClaim(signer, claim);
  return { time: claim.time, nonce: claim.nonce, runId: claim.runId, ...(claim.slackUser ? { slackUser: claim.slackUser } : {}), signature };
}
