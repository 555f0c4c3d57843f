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
if [ ${#debs[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup-system: missing Debian packages: ${debs[*]} (run: sudo apt-get install ${debs[*]})" >&2
    exit 1
  fi
  echo "setup-system: installing ${debs[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${debs[@]}" >/dev/null
fi
# The notebooks' kernel, "serving-lens": this checkout's own tslab by absolute path, in a kernel spec
# kept inside the checkout (.jupyter/kernels/, found through JUPYTER_PATH=$PWD/.jupyter), so that no
# other kernel (a machine-wide "tslab" of another checkout, say) is touched and PATH needs no change.
# JupyterHub users install it for themselves: jupyter kernelspec install --user .jupyter/kernels/serving-lens
kernel_dir="$PWD/.jupyter/kernels/serving-lens"
mkdir -p "$kernel_dir"
/usr/bin/python3 -c 'import json, sys; json.dump({"argv": [sys.argv[1], "kernel", "--config-path", "{connection_file}"], "display_name": "TypeScript (serving-lens)", "language": "typescript"}, open(sys.argv[2], "w"))' \
  "$PWD/node_modules/.bin/tslab" "$kernel_dir/kernel.json.tmp"
mv "$kernel_dir/kernel.json.tmp" "$kernel_dir/kernel.json"
