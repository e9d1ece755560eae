#!/usr/bin/env bash
# TAP: `viridian vm` argument checks (exit 2, one line) and what it says when the service
# cannot be reached (exit 1, one line naming the socket and how to start vmms).
# Usage: vm_cli.sh VIRIDIAN
set -u
V=${1:?viridian binary}
tmp=$(mktemp -d /tmp/vm-cli.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
n=0
fail=0
echo "1..20"
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; fail=1; }
unset VIRIDIAN_SOCKET
S=$tmp/vmms.sock

# expect NAME RC PATTERN -- ARGS: exit code, exactly one stderr line containing PATTERN.
expect() {
	local name=$1 want=$2 pat=$3 rc lines
	shift 4
	"$V" vm "$@" </dev/null >"$tmp/out" 2>"$tmp/err"
	rc=$?
	lines=$(wc -l <"$tmp/err")
	if [ "$rc" = "$want" ] && [ "$lines" = 1 ] && grep -qF -- "$pat" "$tmp/err"; then
		ok "$name"
	else
		notok "$name"
		echo "# rc=$rc (want $want), $lines stderr line(s):"
		sed 's/^/#   /' "$tmp/err"
	fi
}

"$V" vm --help >"$tmp/out" 2>"$tmp/err"
if [ $? = 0 ] && grep -q "checkpoint create" "$tmp/out" && [ ! -s "$tmp/err" ]; then
	ok "--help: usage on stdout, exit 0"
else notok "--help: usage on stdout, exit 0"; fi
"$V" vm >/dev/null 2>&1
if [ $? = 2 ]; then ok "no command: exit 2"; else notok "no command: exit 2"; fi
expect "unknown command" 2 "unknown command 'frob'" -- --socket "$S" frob x
expect "unknown global option" 2 "unknown option '--bogus'" -- --bogus list
expect "start without NAME" 2 "NAME is missing" -- --socket "$S" start
expect "create without --kernel" 2 "needs --memory, --cpus and --kernel" -- --socket "$S" create a --memory 32 --cpus 1
expect "create: --memory junk" 2 "--memory 'lots'" -- --socket "$S" create a --memory lots --cpus 1 --kernel /k
expect "create: --cpus junk" 2 "--cpus 'two'" -- --socket "$S" create a --memory 32 --cpus two --kernel /k
expect "create: --disk with a bad option" 2 "unknown option 'rwx'" -- --socket "$S" create a --memory 32 --cpus 1 --kernel /k --disk /d.img,rwx
expect "create: --disk not absolute with options" 2 "expected an absolute PATH" -- --socket "$S" create a --memory 32 --cpus 1 --kernel /k --disk d.img,ro
expect "create: option without value" 2 "needs a value" -- --socket "$S" create a --memory
expect "modify with nothing to change" 2 "nothing to change" -- --socket "$S" modify a
expect "shutdown --timeout junk" 2 "--timeout 'soon'" -- --socket "$S" shutdown a --timeout soon
expect "stop with an unknown flag" 2 "unknown option '--now'" -- --socket "$S" stop a --now
expect "checkpoint without a subcommand" 2 "expected create, list, apply or remove" -- --socket "$S" checkpoint
expect "checkpoint apply without CP" 2 "checkpoint apply NAME CHECKPOINT" -- --socket "$S" checkpoint apply a

# No service: one line that names the socket and says how to start it, exit 1.
expect "daemon not running: cannot reach, how to start it" 1 \
	"cannot reach vmms at $S: No such file or directory; start it with \`viridian vmms\`" -- --socket "$S" list
VIRIDIAN_SOCKET=$tmp/env.sock expect "VIRIDIAN_SOCKET is used when --socket is not given" 1 \
	"cannot reach vmms at $tmp/env.sock" -- show a
VIRIDIAN_SOCKET=$tmp/env.sock expect "--socket wins over VIRIDIAN_SOCKET" 1 \
	"cannot reach vmms at $S:" -- --socket "$S" start a
# A socket file nobody listens on (a daemon that died): connection refused.
python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$S"
expect "stale socket: cannot reach, connection refused" 1 "cannot reach vmms at $S: " -- --socket "$S" list
exit $fail
