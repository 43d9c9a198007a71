#!/bin/sh
# Direct Monte Carlo voxel S-values in a layered phantom (lung | soft tissue | bone, the
# source voxel in the soft-tissue plane), the check of method="vsv-density" at tissue
# interfaces (tests/kernels/data/direct_layers/README.md). Each case is split over several
# seeds run in parallel; the parts are averaged by the analysis. Needs the [mc] extra.
# Usage: tools/mc_layer_runs.sh WORKDIR [PARALLEL]
set -eu
W=${1:?work folder}
N=${2:-$(nproc)}
P=${PYTHON:-python3}
export OMP_NUM_THREADS=1
mkdir -p "$W"
{
  # nuclide voxel_mm half_n histories-per-part first-seed parts
  for spec in "Y-90 4.8 4 800000 5401 5" "Y-90 2.21 6 800000 5411 5" "Lu-177 2.21 6 5000000 5421 6"; do
    set -- $spec
    i=0
    while [ "$i" -lt "$6" ]; do
      seed=$(( $5 + i ))
      out="$W/$1_$2mm_layers_s$seed.npz"
      [ -e "$out" ] || printf '%s -m dosimetry.kernels.build direct-vsv --nuclide %s --voxel-mm %s --layers lung,soft_tissue,bone --half-n %s --histories %s --seeds 20612 %s --out %s\n' \
        "$P" "$1" "$2" "$3" "$4" "$seed" "$out"
      i=$(( i + 1 ))
    done
  done
} | xargs -P "$N" -I{} sh -c '{} >/dev/null 2>&1 && echo "done {}" || echo "FAILED {}"'
