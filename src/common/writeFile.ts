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
