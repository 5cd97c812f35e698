# shellcheck shell=bash
# tests/cli/nvdisasm.sh — sourced by the SASS tests: sets $nvdisasm to TILEC_NVDISASM, the CUDA
# toolkit's nvdisasm or PyPI's nvidia-cuda-nvdisasm, or exits 77 (skipped) when none exists.
nvdisasm=${TILEC_NVDISASM:-}
if [[ -z $nvdisasm ]]; then
  for c in "${CUDA_HOME:-/usr/local/cuda}/bin/nvdisasm" \
    $(python3 -c 'import nvidia, os; print(*(os.path.join(p, "cu13/bin/nvdisasm") for p in nvidia.__path__))' 2>/dev/null); do
    [[ -x $c ]] && nvdisasm=$c && break
  done
fi
[[ -n $nvdisasm && -x $nvdisasm ]] || { echo "nvdisasm not found: skipped"; exit 77; }
