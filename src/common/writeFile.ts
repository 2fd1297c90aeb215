// A configuration file written on a host atomically: readers see the old file or the new one, never a half
// written one. Pure (an argument vector), so a workflow can put it in a guarded remote run and show it in plans.

// $1 path, $2 content, then a command to run once the file is in place (may be empty). A temporary file in the
// same directory is renamed over the old one (rename is atomic within a file system); the old file is kept
// beside it as <path>.opsflow-previous, and its mode and owner carry over. A file that already holds the content
// is left alone. No `${...}` in here: workflows fill `{node}`-style placeholders in commands.
const WRITE = `p=$1 c=$2; shift 2
if printf '%s' "$c" | cmp -s - "$p" 2>/dev/null; then echo "unchanged $p"
else
  t=$(mktemp "$p.opsflow-XXXXXX") || exit 1
  trap 'rm -f "$t"' EXIT
  printf '%s' "$c" >"$t" || exit 1
  if [ -e "$p" ]; then
    chmod --reference="$p" "$t" && { chown --reference="$p" "$t" 2>/dev/null || :; } && cp -p -- "$p" "$p.opsflow-previous" || exit 1
  else chmod 644 "$t" || exit 1
  fi
  mv -f -- "$t" "$p" || exit 1
  echo "written $p"
fi
[ $# -eq 0 ] || exec "$@"`;

/** Writes `content` to `path` atomically on the host, then runs `then` (a restart, say) if given. */
export function writeFileArgv(path: string, content: string, then: string[] = []): string[] {
  return ['sh', '-c', WRITE, 'opsflow-write', path, content, ...then];
}

// $1 path, $2 the content a write put there, then a command to run afterwards (may be empty). Puts
// <path>.opsflow-previous back, atomically as the write did, but only over the content that write left: a file
// changed since by someone else is not ours to put back.
const RESTORE = `p=$1 c=$2; shift 2
if [ -e "$p.opsflow-previous" ] && printf '%s' "$c" | cmp -s - "$p" 2>/dev/null; then
  t=$(mktemp "$p.opsflow-XXXXXX") || exit 1
  trap 'rm -f "$t"' EXIT
  cp -p -- "$p.opsflow-previous" "$t" && mv -f -- "$t" "$p" || exit 1
  echo "restored $p"
else echo "left $p as it is: it does not hold the content written"
fi
[ $# -eq 0 ] || exec "$@"`;

/** Undoes writeFileArgv(path, content): the previous file back in place, then `then` (a restart, say). */
export function restoreFileArgv(path: string, content: string, then: string[] = []): string[] {
  return ['sh', '-c', RESTORE, 'opsflow-restore', path, content, ...then];
}

/** writeFileArgv's output says the file already held the content, so the write changed nothing. */
export const fileWasUnchanged = (stdout: string): boolean => stdout.startsWith('unchanged ');
