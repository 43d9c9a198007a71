#!/bin/sh
# Monte Carlo runs of the bone and lung run sets (dosimetry.kernels.build.medium_settings)
# and of the direct voxel S-value checks in bone and soft tissue, all tasks sharing the
# cores of one machine (longest first). Needs the [mc] extra (ompmc). Resumable: finished
# files are skipped. Usage: tools/mc_media_runs.sh WORKDIR [PARALLEL]
set -eu
W=${1:?work folder}
N=${2:-$(nproc)}
P=${PYTHON:-python3}
export OMP_NUM_THREADS=1
mkdir -p "$W/direct"
{
  $P -m dosimetry.kernels.build run --raw "$W/bone" --medium bone --list
  $P -m dosimetry.kernels.build run --raw "$W/lung" --medium lung --list
  # nuclide voxel_mm medium half_n histories seed
  for spec in "Lu-177 4.8 bone 4 10000000 5301" "Y-90 4.8 bone 4 2000000 5302" \
              "Lu-177 2.21 soft_tissue 6 20000000 5303" "Y-90 2.21 soft_tissue 6 2000000 5304"; do
    set -- $spec
    out="$W/direct/$1_$2mm_$3.npz"
    [ -e "$out" ] && continue
    printf '9000000000\t%s -m dosimetry.kernels.build direct-vsv --nuclide %s --voxel-mm %s --medium %s --half-n %s --histories %s --seeds 20612 %s --out %s\n' \
      "$P" "$1" "$2" "$3" "$4" "$5" "$6" "$out"
  done
} | sort -rn | cut -f2 | xargs -P "$N" -I{} sh -c '{} >/dev/null 2>&1 && echo "done {}" || echo "FAILED {}"'
