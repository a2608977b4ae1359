#!/usr/bin/env bash
# Installs the Debian packages the toolkit uses (espeak-ng: demo/test speech; chromium: the HTML
# report's browser test) when missing.
# As root it installs them; otherwise it prints the command to run.
set -euo pipefail
PACKAGES=(espeak-ng chromium)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing system packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "warning: missing system packages ${missing[*]}; run: sudo apt-get install ${missing[*]}" >&2
fi
