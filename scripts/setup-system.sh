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
# The manifest tests build k8s/ with kubectl's own kustomize and compare (test/k8s). Components
# (`kind: Component`) need kustomize v4+, i.e. kubectl 1.21 or later; Debian's kubernetes-client
# package is 1.20, too old, so it is not installed from there: put a kubectl from
# https://dl.k8s.io/release/v1.32.4/bin/linux/amd64/kubectl (or your distribution's current one) on
# the PATH. On CI a missing or old kubectl fails here; elsewhere those tests skip with a notice.
kustomize_version=$(kubectl version --client 2>/dev/null | sed -n 's/^Kustomize Version: v\{0,1\}\([0-9][0-9]*\).*/\1/p')
if [ -z "$kustomize_version" ] || [ "$kustomize_version" -lt 4 ]; then
  msg="setup-system: kubectl with kustomize v4+ (kubectl >= 1.21) not found on the PATH; $(command -v kubectl >/dev/null 2>&1 && kubectl version --client 2>/dev/null | tr '\n' ' ' || echo 'no kubectl')"
  if [ -n "${CI:-}" ]; then
    echo "$msg: install kubectl 1.21 or later (https://dl.k8s.io/release/v1.32.4/bin/linux/amd64/kubectl)" >&2
    exit 1
  fi
  echo "$msg: the kubectl kustomize cross-checks in test/k8s will skip" >&2
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
