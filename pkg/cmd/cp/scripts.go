package cp

import (
	"fmt"
	"strings"
)

// The remote side of a copy is a POSIX sh script, built here with every
// value quoted. It speaks in lines that start with a marker:
//
//	SSMKIT-READY               upload: the terminal is raw, send the bytes
//	SSMKIT1 <file|dir> <size>  download: header on stdout before the data
//	SSMKIT-SHA256 <hex>        SHA-256 of the bytes the node read or sent
//	SSMKIT-ERR <kind> <path>   a failure; kinds below
//	SSMKIT-DONE                parallel upload: this part is written
const (
	markReady  = "SSMKIT-READY"
	markHeader = "SSMKIT1"
	markSHA    = "SSMKIT-SHA256"
	markErr    = "SSMKIT-ERR"
	markDone   = "SSMKIT-DONE"
)

// Failure kinds the scripts report, and what the user reads.
var errKinds = map[string]string{
	"missing":  "no such file or directory",
	"denied":   "permission denied",
	"notdir":   "not a directory",
	"isdir":    "is a directory (use -r to copy a directory)",
	"notfile":  "is not a regular file or directory",
	"tmp":      "cannot create a temporary file (is /tmp writable?)",
	"write":    "writing failed (disk full?)",
	"checksum": "the SHA-256 of what arrived does not match what was sent; nothing was replaced",
	"tar":      "tar failed",
}

// q quotes s for sh.
func q(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// prelude defines err() and a temporary directory with a FIFO through
// which sha256sum reads the same bytes as the data's destination.
const prelude = `err() { printf '\n` + markErr + ` %s %s\n' "$1" "$2" >&2; exit 3; }
t=$(mktemp -d 2>/dev/null) && mkfifo "$t/f" || err tmp /tmp
trap 'rm -rf "$t"' EXIT
`

// downloadScript sends path: a header line, then the file or a tar of the
// directory on stdout, and the SHA-256 of the data on stderr.
func downloadScript(path string, recursive bool) string {
	r := "0"
	if recursive {
		r = "1"
	}
	return prelude + `p=` + q(path) + `; r=` + r + `
[ -e "$p" ] || [ -L "$p" ] || err missing "$p"
if [ -d "$p" ]; then
  [ "$r" = 1 ] || err isdir "$p"
  [ -r "$p" ] && [ -x "$p" ] || err denied "$p"
  printf '` + markHeader + ` dir 0\n'
  (sha256sum < "$t/f" | cut -d' ' -f1 > "$t/sum") &
  (cd "$p/.." 2>/dev/null || cd "$(dirname -- "$p")"; tar -cf - -- "$(basename -- "$p")") | tee "$t/f"
else
  [ -f "$p" ] || err notfile "$p"
  [ -r "$p" ] || err denied "$p"
  printf '` + markHeader + ` file %s\n' "$(wc -c < "$p" | tr -d ' ')"
  # Two readers of the file, side by side: no extra pipe for the data.
  (sha256sum < "$p" | cut -d' ' -f1 > "$t/sum") &
  cat < "$p"
fi
wait
printf '` + markSHA + ` %s\n' "$(cat "$t/sum")" >&2
`
}

// fileDest resolves the destination $d of a file upload (into the
// directory $d as $name when $d is one) and checks that it may be written.
const fileDest = `[ -d "$d" ] && d="$d/$name"
[ -d "$d" ] && err isdir "$d"
dir=$(dirname -- "$d")
[ -d "$dir" ] || err notdir "$dir"
[ -w "$dir" ] || err denied "$dir"
[ ! -e "$d" ] || [ -w "$d" ] || err denied "$d"
`

// rawTerminal puts the node's terminal in raw mode, so every byte reaches
// the reader as sent (no line editing, no signals, no ^V escapes, no
// echo), and tells the sender to start.
const rawTerminal = `stty raw -echo -iexten 2>/dev/null || err tmp tty
printf '` + markReady + `\n'
`

// uploadScript receives size bytes into dest over a raw terminal: a file
// (kind "file", named name when dest is a directory) or a tar of a
// directory. After the data come the 64 hex digits of its SHA-256 as the
// sender computed it; the node compares them with its own before a file
// replaces dest (a directory is extracted as it arrives and checked after).
func uploadScript(dest, kind, name string, size int64) string {
	var b strings.Builder
	b.WriteString(prelude)
	fmt.Fprintf(&b, "d=%s; n=%d; name=%s\n", q(dest), size, q(name))
	if kind == "file" {
		b.WriteString(fileDest + `tmp="$d.ssmkit-$$"
(: > "$tmp") 2>/dev/null || err denied "$dir"
# Write, then hash the written file: fewer copies than a tee, which
# counts on a busy machine.
receive() {
  head -c "$n" > "$tmp" || err write "$d"
  sha256sum < "$tmp" | cut -d' ' -f1 > "$t/sum"
}
`)
	} else {
		b.WriteString(`if [ -d "$d" ]; then
  [ -w "$d" ] || err denied "$d"
  x="$d"; strip=0
else
  dir=$(dirname -- "$d")
  [ -d "$dir" ] || err notdir "$dir"
  [ -w "$dir" ] || err denied "$dir"
  mkdir -- "$d" || err denied "$d"
  x="$d"; strip=1
fi
receive() {
  (sha256sum < "$t/f" | cut -d' ' -f1 > "$t/sum") &
  head -c "$n" | tee "$t/f" | tar -xf - -C "$x" --strip-components="$strip" || err tar "$d"
  wait
}
`)
	}
	b.WriteString(rawTerminal + `receive
want=$(head -c 64)
got=$(cat "$t/sum")
printf '` + markSHA + ` %s\n' "$got"
`)
	if kind == "file" {
		b.WriteString(`if [ "$got" != "$want" ]; then rm -f "$tmp"; err checksum "$d"; fi
mv -f -- "$tmp" "$d" || err denied "$d"
`)
	} else {
		b.WriteString(`[ "$got" = "$want" ] || err checksum "$d"
`)
	}
	return b.String()
}

// partBlock is the unit of a parallel upload's byte ranges: every part
// starts at a multiple of it, which dd's seek counts in.
const partBlock = 1 << 20

// partScript receives n bytes of a parallel upload over a raw terminal and
// writes them at block off/partBlock of the file data in the work
// directory beside the destination, "<dest>.ssmkit-<token>", shared by
// every part (the first to start creates it). A part that fails or is
// hung up on removes the work directory; finishScript checks and renames.
func partScript(dest, name, token string, off, n int64) string {
	return prelude + fmt.Sprintf("d=%s; name=%s; n=%d; k=%d\n", q(dest), q(name), n, off/partBlock) +
		fileDest + `w="$d.ssmkit-` + token + `"; keep=
trap 'rm -rf "$t"; [ -n "$keep" ] || rm -rf "$w"' EXIT
trap 'exit 1' HUP INT TERM
mkdir "$w" 2>/dev/null || [ -d "$w" ] || err denied "$dir"
` + rawTerminal + `head -c "$n" | dd of="$w/data" bs=` + fmt.Sprint(partBlock) + ` seek="$k" conv=notrunc 2>/dev/null || err write "$d"
keep=1
printf '` + markDone + `\n'
`
}

// finishScript ends a parallel upload once every part is written: it
// compares the SHA-256 of the whole file with want, the sender's, and
// renames the file into place, or (want empty: a part failed) only
// removes the work directory. Run it after every part's session ended.
func finishScript(dest, name, token, want string) string {
	return prelude + fmt.Sprintf("d=%s; name=%s; want=%s\n", q(dest), q(name), q(want)) +
		`[ -d "$d" ] && d="$d/$name"
w="$d.ssmkit-` + token + `"
trap 'rm -rf "$t" "$w"' EXIT
[ -n "$want" ] || exit 0
got=$(sha256sum < "$w/data" | cut -d' ' -f1)
printf '` + markSHA + ` %s\n' "$got" >&2
[ "$got" = "$want" ] || err checksum "$d"
mv -f -- "$w/data" "$d" || err denied "$d"
`
}
