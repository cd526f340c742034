#!/bin/bash
# SPDX-License-Identifier: MIT
# Access control (docs/security.md): the coordinator's Unix socket is its
# owner's alone (0600 in a 0700 directory); TCP is loopback-only unless
# --allow-remote; over TCP (untrusted) every request for a job needs the
# job's token, and a wrong or missing token, or a message from a
# connection that is not a member of the job, is refused and logged with
# the peer; tokens are compared in constant time; checkpoint images are
# the owner's alone (files 0600, directories 0700), CRIU's files included.
source "$(dirname "$0")/lib.sh"

N=2
export IBSNAP_CRIU=$FAKE_CRIU FAKE_CRIU_CTL=$T
LOG=$T/ibsnapd.log
PORT=$((20000 + RANDOM % 20000))
D=$B/bin/ibsnapd

# --- listening
"$D" -f --sock "$T/x.sock" --listen "0.0.0.0:$PORT" >"$T/remote" 2>&1
[[ $? -ne 0 ]] && grep -q -- "--allow-remote" "$T/remote"
ok "--listen on a non-loopback address is refused without --allow-remote" $? "$T/remote"

"$D" -f --sock "$IBSNAP_COORD_SOCK" --listen "127.0.0.1:$PORT" >"$LOG" 2>&1 &
RUN_PIDS+=($!)
wait_for 100 test -S "$IBSNAP_COORD_SOCK"
[[ $(stat -c %a "$IBSNAP_COORD_SOCK") == 600 ]]
ok "the Unix socket is 0600" $? <(stat -c '%a %n' "$IBSNAP_COORD_SOCK")
# another user: only the socket's own mode stops it (the directory is
# opened to it for this check; the binary is copied where it can run it)
chmod 711 "$T"
cp "$IBSNAP" "$T/ibsnap-other" && chmod 755 "$T/ibsnap-other"
setpriv --reuid=nobody --regid=nogroup --clear-groups \
	"$T/ibsnap-other" status --coord "unix:$IBSNAP_COORD_SOCK" >"$T/other.out" 2>&1
rc=$?
chmod 700 "$T"
[[ $rc -ne 0 ]] && grep -qi "permission denied" "$T/other.out"
ok "another user cannot connect to it (setpriv nobody)" $? "$T/other.out"
ss -ltnH "sport = :$PORT" >"$T/ss" 2>&1
grep -q "127.0.0.1:$PORT" "$T/ss" && ! grep -q "0.0.0.0:$PORT\|\*:$PORT" "$T/ss"
ok "TCP listens on loopback only" $? "$T/ss"

# --- a job, its token
start_job "$T/peers" $N --job sec
wait_for 300 has_procs sec $N
ok "job sec: $N processes" $? "$T/peers/run.out"
# (this job's: other coord_peer jobs may run on the host)
TOK=
for p in $(pgrep -f coord_peer); do
	tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "PEER_DIR=$T/peers" ||
		continue
	TOK=$(tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | sed -n 's/^IBSNAP_TOKEN=//p')
	[[ -n $TOK ]] && break
done
[[ ${#TOK} -eq 32 ]]
ok "the job's processes carry its 128-bit token" $?

TCP=127.0.0.1:$PORT
WRONG=00000000000000000000000000000000
IBSNAP_TOKEN=$WRONG "$IBSNAP" status --job sec --coord "$TCP" >"$T/s1" 2>&1
rc=$?
[[ $rc -ne 0 ]] && grep -q "token" "$T/s1" && ! grep -q "sec:.*processes" "$T/s1" &&
	wait_for 50 grep -q "tcp 127.0.0.1:[0-9]*: job 'sec': token required" "$LOG"
ok "status over TCP with a wrong token: refused and logged with the peer" $? "$T/s1" "$LOG"
"$IBSNAP" status --job sec --coord "$TCP" >"$T/s2" 2>&1
[[ $? -ne 0 ]] && wait_for 50 grep -q "tcp 127.0.0.1:[0-9]*: job 'sec': token required" "$LOG"
ok "status over TCP without a token: refused and logged" $? "$T/s2" "$LOG"
IBSNAP_TOKEN=$WRONG "$IBSNAP" checkpoint --job sec --no-dump --coord "$TCP" >"$T/c1" 2>&1
[[ $? -ne 0 ]] && ! grep -q "^checkpoint .* done" "$T/c1" &&
	[[ $(grep -c "tcp 127.0.0.1:[0-9]*: .*sec" "$LOG") -ge 3 ]]
ok "checkpoint over TCP with a wrong token: refused and logged" $? "$T/c1" "$LOG"
IBSNAP_TOKEN=$TOK "$IBSNAP" status --job sec --coord "$TCP" >"$T/s3" 2>&1 &&
	grep -q "$N processes" "$T/s3"
ok "... with the job's token: answered" $? "$T/s3"
IBSNAP_TOKEN=$WRONG IBSNAP_COORD=$TCP "$IBSNAP" run --no-preload --job sec -- true \
	>"$T/r1" 2>&1
grep -q "token mismatch for job 'sec'" "$T/r1" &&
	grep -q "tcp 127.0.0.1:[0-9]*: token mismatch for job 'sec'" "$LOG"
ok "an agent joining with a wrong token: refused and logged" $? "$T/r1" "$LOG"

# a connection that is no member of any job sends a member's message (an
# ACK: seq, phase, status, usec, empty text): refused, logged
send_ack() {
	exec 3<>"/dev/tcp/127.0.0.1/$PORT" || return 1
	{
		printf 'ISNP\001\000\016\000\024\000\000\000'
		printf '\001\000\000\000\002\000'
		head -c 14 /dev/zero
	} >&3
	timeout 5 cat <&3 >"$T/ack" 2>/dev/null
	exec 3<&-
	grep -aq "unexpected ACK" "$T/ack"
}
send_ack && wait_for 50 grep -q "tcp 127.0.0.1:[0-9]*: unexpected ACK" "$LOG"
ok "a member's message from a non-member connection: refused and logged" $? "$LOG"
has_procs sec $N
ok "the job is untouched by all of it" $?

# --- tokens compared in constant time, nowhere with memcmp
grep -rn "memcmp([^;]*tok\|bcmp([^;]*tok" \
	"$(dirname "$0")"/../../coord "$(dirname "$0")"/../../cli >"$T/cmp"
[[ $? -eq 1 ]] && grep -q "diff |= a\[i\] ^ b\[i\]" "$(dirname "$0")"/../../coord/proto.c
ok "tokens are compared only by isn_token_eq (constant time)" $? "$T/cmp"

# --- images: the owner's alone, whatever the umask and CRIU's modes
(umask 022 && "$IBSNAP" checkpoint --job sec --dir "$T/img") >"$T/ck" 2>&1
ok "a checkpoint with umask 022" $? "$T/ck"
find "$T/img/$HOST" -mindepth 1 -type f -perm /077 >"$T/open-files"
find "$T/img/$HOST" -type d -perm /077 >"$T/open-dirs"
[[ ! -s $T/open-files && ! -s $T/open-dirs && -n $(ls "$T/img/$HOST") ]] &&
	[[ $(stat -c %a "$T/img/$HOST"/*/ibsnap.meta) == 600 &&
		$(stat -c %a "$T/img/$HOST"/*/pages-1.img) == 600 ]]
ok "image files 0600 (CRIU's, ibsnap.meta with the token), directories 0700" $? \
	"$T/open-files" "$T/open-dirs" <(ls -laR "$T/img")

stop_job "$T/peers"
ok "the job exits cleanly" $? "$T/peers/run.out"
finish
