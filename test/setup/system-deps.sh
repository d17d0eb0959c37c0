#!/usr/bin/env bash
# What the test suite needs from the system, installed from Debian when missing, so that
# `npm test` (whose `pretest` runs this) passes on a fresh machine with only Node.js and git:
# the brokers of the cluster tests, Chromium for the dashboard's, curl/jq/openssl for the
# README's walkthroughs, iproute2 for the network-namespace tests, faketime (libfaketime) for
# the clock-step tests. It changes nothing when all
# are present; when some are missing and cannot be installed (no apt-get, not root and no
# sudo), it says which and how, and fails rather than letting dozens of tests fail one by one.
set -uo pipefail

declare -A package_of=(
  [git]=git [nats-server]=nats-server [redis-server]=redis-server
  [curl]=curl [jq]=jq [openssl]=openssl [ip]=iproute2 [faketime]=faketime
)
missing=()
for tool in "${!package_of[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${package_of[$tool]}")
done
[ -x "${FLOE_CHROMIUM:-/usr/bin/chromium}" ] || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo_cmd=(sudo -n); else sudo_cmd=(none); fi
fi
if [ "${sudo_cmd[0]:-}" = none ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "test setup: cannot install ${missing[*]} (needs apt-get and root or password-less sudo)." >&2
  echo "  Install them, e.g.: sudo apt-get install ${missing[*]}" >&2
  echo "  (Chromium elsewhere: FLOE_CHROMIUM=/path/to/chromium npm test)" >&2
  exit 1
fi
echo "test setup: installing ${missing[*]} from Debian" >&2
if ! { "${sudo_cmd[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null; }; then
  echo "test setup: apt-get could not install ${missing[*]}" >&2
  exit 1
fi
