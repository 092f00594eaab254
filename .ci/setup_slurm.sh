#!/usr/bin/env bash
# Install what the SLURM tests need: Debian's slurm-wlm (slurmctld, slurmd, clients) and
# munge. Idempotent: does nothing when the binaries are already there. It starts no
# daemon; tests/slurm_cluster.py starts a private cluster per test session and stops it.
set -euo pipefail

needed=(slurmctld slurmd munged sbatch squeue sinfo scontrol scancel srun)
missing=()
for bin in "${needed[@]}"; do
    if ! command -v "$bin" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$bin" ]; then
        missing+=("$bin")
    fi
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "setup_slurm: slurm-wlm and munge already installed ($(slurmctld -V 2>/dev/null || /usr/sbin/slurmctld -V))"
    exit 0
fi

echo "setup_slurm: missing ${missing[*]}; installing slurm-wlm and munge"
if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup_slurm: apt-get not found; install SLURM (slurmctld, slurmd, clients) and munge" \
         "with this system's package manager" >&2
    exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
    sudo=(sudo)
fi
"${sudo[@]}" apt-get update
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y slurm-wlm munge
# Debian's postinst may start the system services; the tests use their own private
# daemons (own ports, socket and key), so the system ones are not needed.
echo "setup_slurm: installed $(/usr/sbin/slurmctld -V)"
