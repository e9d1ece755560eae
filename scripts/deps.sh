#!/usr/bin/env bash
# Install the Debian packages Viridian needs, only those that are missing.
# Usage: scripts/deps.sh [build|check|demo|bench|fuzz]   (default: check)
set -euo pipefail
what=${1:-check}

build_pkgs=(gcc make meson ninja-build pkg-config liburing-dev libcmocka-dev
	libmicrohttpd-dev libjson-c-dev libcurl4-openssl-dev libseccomp-dev)
check_pkgs=(qemu-utils libvhdi-utils python3-libvhdi qemu-system-x86 python3 acpica-tools curl)
fuzz_pkgs=(clang libclang-rt-14-dev)

pkgs=("${build_pkgs[@]}")
case "$what" in
build) ;;
check | demo | bench) pkgs+=("${check_pkgs[@]}") ;;
fuzz) pkgs+=("${check_pkgs[@]}" "${fuzz_pkgs[@]}") ;;
*) echo "deps.sh: unknown set '$what' (use build, check, demo, bench or fuzz)" >&2; exit 2 ;;
esac
[ -n "${CI:-}" ] && [ "$what" = check ] && pkgs+=("${fuzz_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[ "$st" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO=sudo
	else
		echo "deps.sh: missing packages: ${missing[*]}; run as root: apt-get install ${missing[*]}" >&2
		exit 1
	fi
else
	SUDO=
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
