#!/bin/bash
# SPDX-License-Identifier: MIT
# bench/splice.sh [--wrap] DOC NAME BLOCK: put BLOCK (which starts with a
# line "<!-- NAME: begin ...-->" and ends with "<!-- NAME: end -->") in
# place of DOC's block of that NAME, or at DOC's end if it has none.
# --wrap: BLOCK is a whole document (another benchmark's report): its
# headings go one level down and the markers are added.
set -euo pipefail
wrap=0
if [[ ${1:-} == --wrap ]]; then
	wrap=1
	shift
fi
doc=${1:?usage: splice.sh [--wrap] DOC NAME BLOCK} name=${2:?NAME} block=${3:?BLOCK}
tmp=$(mktemp)
wrapped=$(mktemp)
trap 'rm -f "$tmp" "$wrapped"' EXIT
touch "$doc"
if [[ $wrap == 1 ]]; then
	{
		echo "<!-- $name: begin (written by make $name) -->"
		echo
		sed 's/^#/###/' "$block"
		echo
		echo "<!-- $name: end -->"
	} >"$wrapped"
	block=$wrapped
fi
if grep -q "^<!-- $name: begin" "$doc"; then
	awk -v b="<!-- $name: begin" -v e="<!-- $name: end -->" -v f="$block" '
		index($0, b) == 1 { while ((getline l < f) > 0) print l; skip = 1; next }
		skip && $0 == e { skip = 0; next }
		!skip' "$doc" >"$tmp"
else
	{ cat "$doc"; echo; cat "$block"; } >"$tmp"
fi
cat "$tmp" >"$doc"
