#!/usr/bin/env bash
# A program's command line (CLI11): --help exits 0 and lists SHOWN (a subcommand or an option), and
# an unknown option (after ARGS) exits 64 with a message that names it.  usage_test.sh PROGRAM SHOWN [ARGS...]
set -uo pipefail
program=$1 shown=$2
shift 2
fail() { echo "FAIL: $*" >&2; exit 1; }
help=$("$program" --help) || fail "$program --help exited $?"
grep -qw -- "$shown" <<<"$help" || fail "$program --help does not list $shown: $help"
out=$("$program" "$@" --no-such-option 2>&1); rc=$?
[[ $rc == 64 ]] && grep -qF -- "--no-such-option" <<<"$out" || fail "$program $* --no-such-option: exit $rc, $out"
echo "PASS: $(basename "$program"): --help lists $shown; an unknown option exits 64"
