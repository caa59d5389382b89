#!/usr/bin/env bash
# Installs the Debian packages qtsp needs, and nothing when they are already there.
#   scripts/system-deps.sh run    what `make run` needs (openssl)
#   scripts/system-deps.sh test   what `make test` needs: the real relying parties and servers
#   scripts/system-deps.sh bench  what `make bench` needs (wrk, hyperfine)
# Needs root (or sudo) only when something is missing.
set -euo pipefail
want="${1:-test}"

# command-to-check  debian-package
run_pkgs=(
  "openssl openssl"
)
test_pkgs=(
  "openssl openssl"
  "initdb|/usr/lib/postgresql/*/bin/initdb postgresql"
  "runuser util-linux"
  "javac openjdk-17-jdk-headless"
  "nginx|/usr/sbin/nginx nginx"
  "haproxy|/usr/sbin/haproxy haproxy"
  "softhsm2-util softhsm2"
  "curl curl"
  "chromium chromium"
  "chromedriver chromium-driver"
  "git git"
)
bench_pkgs=(
  "wrk wrk"
  "hyperfine hyperfine"
)

case "$want" in
  run) pkgs=("${run_pkgs[@]}") ;;
  test) pkgs=("${test_pkgs[@]}") ;;
  bench) pkgs=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  *) echo "usage: $0 run|test|bench" >&2; exit 2 ;;
esac

present() {  # any of the |-separated commands or globbed paths exists
  local alt
  IFS='|' read -ra alts <<<"$1"
  for alt in "${alts[@]}"; do
    if [[ "$alt" == /* ]]; then
      compgen -G "$alt" >/dev/null && return 0
    else
      command -v "$alt" >/dev/null 2>&1 && return 0
    fi
  done
  return 1
}

missing=()
for entry in "${pkgs[@]}"; do
  read -r check pkg <<<"$entry"
  present "$check" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing Debian packages: ${missing[*]}" >&2
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "need root to install: apt-get install ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
if ! command -v apt-get >/dev/null; then
  echo "not a Debian-like system: install ${missing[*]} with your package manager" >&2; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
