#!/bin/bash
# SPDX-License-Identifier: MIT
# The differential suite (in the guest): the probes vdiff_attr, vdiff_bad,
# vdiff_dp and vdiff_err (tests/lab/vdiff.h) on rxe0 natively, under the shim, under the shim in remap mode, and on the
# fake HCA under the shim.  The shim must change nothing (same errno, WC
# status, attribute and data on every line); the fake HCA may differ from
# rxe only where docs/fake-hca.md ("Differences from rxe") lists the line's
# key with both values, and every listed difference must still occur.
#   tests/lab/diff.sh BUILD_DIR [OUT_DIR]    (OUT_DIR keeps the transcripts)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

BUILD=$(cd "${1:?usage: diff.sh BUILD_DIR [OUT_DIR]}" && pwd)
OUT=${2:-$(mktemp -d)}
DOC=$HERE/../../docs/fake-hca.md
IBSNAP=$BUILD/bin/ibsnap
T=${VDIFF_TIMEOUT:-120} # a probe takes 2-30 s here
mkdir -p "$OUT"

# The table rows of the doc's section: key<TAB>rxe<TAB>fake, cells unquoted.
known() {
	awk -F'|' '/^## /{ on = ($0 ~ /^## Differences from rxe/) }
		on && /^\| *`/ {
			for (i = 2; i <= 4; i++) {
				gsub(/^ *`?|`? *$/, "", $i)
			}
			print $2 "\t" $3 "\t" $4
		}' "$DOC"
}

# compare A B KNOWN: the lines of A and B by key (text before the first
# ":"), in A's order; prints each difference KNOWN (key<TAB>rxe<TAB>fake)
# does not list and each listed one that did not occur; nothing if all is
# as listed.  KNOWN /dev/null: every difference.
compare() {
	awk -F'\t' -v A="$1" -v B="$2" '
		function load(f, m, own,   line, k, key) {
			while ((getline line < f) > 0) {
				k = index(line, ":")
				key = k ? substr(line, 1, k - 1) : line
				m[key] = k ? substr(line, k + 1) : ""
				sub(/^ /, "", m[key])
				if (!(key in seen)) {
					seen[key]
					order[++n] = key
				}
			}
		}
		FNR == NR { kr[$1] = $2; kf[$1] = $3; next }
		END {
			load(A, a); load(B, b)
			for (i = 1; i <= n; i++) {
				k = order[i]
				va = (k in a) ? a[k] : "(absent)"
				vb = (k in b) ? b[k] : "(absent)"
				if (va == vb) {
					if (k in kr)
						print "listed, but the same: " k ": " va
					continue
				}
				if ((k in kr) && kr[k] == va && kf[k] == vb)
					continue
				print "differs: " k
				print "    rxe:  " va
				print "    fake: " vb
				if (k in kr)
					print "    listed: rxe `" kr[k] "`, fake `" kf[k] "`"
			}
		}' "$3" /dev/null
}

run() { # NAME OUTFILE [VAR=VALUE...] CMD...
	local name=$1 out=$2 rc=0
	shift 2
	timeout -k 5 "$T" env "$@" >"$out" 2>"$out.err" || rc=$?
	if [[ $rc -eq 0 && ! -s $out ]]; then
		rc=1
	fi
	ok "$name" "$rc" "$out.err" "$out"
}

known >"$OUT/known.tsv"
[[ -s $OUT/known.tsv ]] || echo "note: no difference listed in $DOC"
fab=$(mktemp -d /dev/shm/ibsnap-vdiff.XXXXXX)
PROBES="attr bad dp err"
for p in $PROBES; do
	prog=$BUILD/tests/lab/vdiff_$p
	run "vdiff_$p natively on rxe0" "$OUT/$p.native" "$prog" rxe0 || true
	run "vdiff_$p under the shim on rxe0" "$OUT/$p.shim" \
		"$IBSNAP" run -- "$prog" rxe0 || true
	run "vdiff_$p under the shim on rxe0, remap mode" "$OUT/$p.remap" \
		IBSNAP_TEST_REMAP=1 "$IBSNAP" run -- "$prog" rxe0 || true
	# rxe0 on a 1500-byte veth has a 1024-byte path MTU: so has the fake
	run "vdiff_$p on the fake HCA" "$OUT/$p.fake" IBSNAP_FABRIC="$fab" \
		IBSNAP_FAKE_MTU=1024 "$IBSNAP" run --fake -- "$prog" fake0 || true

	for mode in shim remap; do
		compare "$OUT/$p.native" "$OUT/$p.$mode" /dev/null >"$OUT/$p.$mode.diff"
		ok "vdiff_$p: $mode on rxe0 = native rxe0 ($(wc -l <"$OUT/$p.native") lines)" \
			"$(rc not test -s "$OUT/$p.$mode.diff")" "$OUT/$p.$mode.diff" || true
	done
done
rm -rf "$fab"

# the fake against rxe: all probes' lines, one check
for m in native fake; do
	for p in $PROBES; do
		cat "$OUT/$p.$m"
	done >"$OUT/all.$m"
done
compare "$OUT/all.native" "$OUT/all.fake" "$OUT/known.tsv" >"$OUT/fake.diff"
ok "fake HCA = rxe0 but for the $(wc -l <"$OUT/known.tsv") differences docs/fake-hca.md lists" \
	"$(rc not test -s "$OUT/fake.diff")" "$OUT/fake.diff" || true
finish
