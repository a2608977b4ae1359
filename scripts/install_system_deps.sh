#!/usr/bin/env bash
# Installs the Debian packages the toolkit uses (espeak-ng: demo/test speech; chromium: the HTML
# report's browser test) when missing.
# As root it installs them; otherwise it prints the command to run.
# chromium is optional outside CI (only its browser test needs it, skipped without it; Ubuntu
# ships it as a snap, so apt-get cannot install it there): a failure is a note, not an error.
# In CI (CI set) it is required like the others.
set -euo pipefail
PACKAGES=(espeak-ng chromium)
OPTIONAL=" chromium "
[ -n "${CI:-}" ] && OPTIONAL=" "
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing system packages: ${missing[*]}"
  apt-get update -qq || echo "warning: apt-get update failed; trying the cached package lists" >&2
  for p in "${missing[@]}"; do
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >/dev/null; then
      if [[ "$OPTIONAL" == *" $p "* ]]; then
        echo "note: $p could not be installed (optional outside CI): its browser test is skipped" >&2
      else
        echo "error: apt-get install $p failed" >&2
        exit 1
      fi
    fi
  done
else
  echo "warning: missing system packages ${missing[*]}; run: sudo apt-get install ${missing[*]}" >&2
fi
