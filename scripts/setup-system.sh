#!/usr/bin/env bash
# Installs what the test suite needs from outside npm, when it is missing, and registers the tslab
# Jupyter kernel. Run by `npm test` (pretest) and safe to rerun: it does nothing when all is present.
# Debian packages need root (as on CI); without root it says what to install and stops.
set -euo pipefail
cd "$(dirname "$0")/.."
debs=()
# Notebooks are executed headlessly with a real Jupyter (Debian's Python sees these packages).
for p in jupyter-nbconvert python3-nbclient python3-ipykernel; do
  dpkg -s "$p" >/dev/null 2>&1 || debs+=("$p")
done
# Text in pictures (grids, charts) is drawn with DejaVu Sans, so it renders the same on every machine.
dpkg -s fonts-dejavu-core >/dev/null 2>&1 || debs+=(fonts-dejavu-core)
# The serving tests make a throwaway TLS certificate with the openssl command.
command -v openssl >/dev/null 2>&1 || debs+=(openssl)
# The studio's browser tests and benchmark drive Debian's Chromium (playwright-core, no browser download).
dpkg -s chromium >/dev/null 2>&1 || debs+=(chromium)
if [ ${#debs[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup-system: missing Debian packages: ${debs[*]} (run: sudo apt-get install ${debs[*]})" >&2
    exit 1
  fi
  echo "setup-system: installing ${debs[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${debs[@]}" >/dev/null
fi
# The tslab kernel must be registered with the Python that has Jupyter, started by this checkout's
# own tslab (a kernel spec left by another checkout may point at a binary that is gone): always
# re-register, it takes a moment.
npx --no-install tslab install --python=/usr/bin/python3 --binary="$PWD/node_modules/.bin/tslab" >/dev/null
