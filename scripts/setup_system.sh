#!/usr/bin/env bash
# Debian's WordNet 3.0, which NLTK reads when nltk.download cannot reach its server
# (neuron_concepts.wordnet copies it into the environment's nltk_data). SLURM for the
# cluster tests comes from .ci/setup_slurm.sh. Chromium renders the neuron browser's screenshot
# and its tests (through Playwright, executable /usr/bin/chromium). Safe to run again: installs
# only what is missing.
set -euo pipefail

packages=(wordnet-base wordnet-sense-index chromium)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -eq 0 ]]; then
  sudo=""
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  sudo="sudo"
else
  echo "Missing Debian packages: ${missing[*]}. Install them with:" >&2
  echo "  sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "Installing ${missing[*]} ..."
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
