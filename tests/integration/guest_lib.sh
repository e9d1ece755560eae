# Shared by the integration scripts that boot the test guest (sourced, not run).

# Why guest boots must be skipped here (empty: they can run). Args: TGUEST_ELF.
guest_skip_reason() {
	if [ -z "${1:-}" ] || [ ! -f "$1" ]; then
		echo "test guest not built"
	elif [ ! -e /dev/kvm ]; then
		echo "no /dev/kvm"
	elif [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
		echo "no permission on /dev/kvm"
	fi
}

# The guest's TAP in FILE has a plan, as many ok lines as planned, and no "not ok".
tap_all_ok() {
	local f=$1 plan oks
	plan=$(grep -m1 -oE '^1\.\.[0-9]+' "$f" | cut -d. -f3)
	oks=$(grep -cE '^ok [0-9]+' "$f")
	[ -n "$plan" ] && [ "$plan" -gt 0 ] && [ "$oks" = "$plan" ] && ! grep -qE '^not ok' "$f"
}
