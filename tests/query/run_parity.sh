#!/usr/bin/env bash
# Parity of the query encoders with the reference packages themselves.
#
# The tests that compare against open_clip and laion_clap skip when those packages are missing,
# and both need torchvision, so the project's own environment does not have them. This builds a
# separate virtual environment with CPU torch + torchvision, open_clip_torch, laion_clap and this
# package, then runs those tests, refusing to pass when the packages did not import.
#
#   bash tests/query/run_parity.sh [extra pytest arguments]
#
# Environment:
#   PARITY_VENV     where the environment goes (default: $TMPDIR/audiosep-parity-venv; reused)
#   TORCH_SPEC      torch and torchvision versions (default "torch==2.11.0 torchvision==0.26.0",
#                   the builds the reference was checked with); torchvision pins the torch
#                   release, e.g. "torch==2.13.0 torchvision==0.28.0"
#   TORCH_PIP_ARGS  extra pip arguments for torch, e.g. "--index-url URL" of PyTorch's CPU wheel
#                   index; without it pip takes the registry's default builds, which on Linux are
#                   CUDA ones (about 4 GB with torch's nvidia-* dependencies; they run on a CPU
#                   machine: the default passed here, 9 tests, in 57 s with a warm venv). The
#                   registry's torchvision does not load on a CPU torch ("operator
#                   torchvision::nms does not exist"): torch and torchvision must come from the
#                   same index
#   AUDIOSEP_CLAP_CHECKPOINT, AUDIOSEP_ROBERTA_TOKENIZER
#                   music_speech_audioset_epoch_15_esc_89.98.pt and a roberta-base tokenizer
#                   folder, for the test on the released CLAP weights (skipped without them)
set -euo pipefail
cd "$(dirname "$0")/../.."
# laion_clap asks the Hugging Face Hub for BERT/RoBERTa tokenizers as it is imported and, with no
# network, retries for minutes; offline it imports at once (the tests bring their own tokenizers).
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"
venv="${PARITY_VENV:-${TMPDIR:-/tmp}/audiosep-parity-venv}"
python="$venv/bin/python"
[ -x "$python" ] || python3 -m venv "$venv"
# shellcheck disable=SC2086  # TORCH_SPEC and TORCH_PIP_ARGS are lists of words
"$python" -m pip install -q ${TORCH_PIP_ARGS:-} ${TORCH_SPEC:-torch==2.11.0 torchvision==0.26.0}
"$python" -m pip install -q -e ".[test]" open_clip_torch laion_clap
"$python" -c "import open_clip, laion_clap, torch, torchvision; print('torch', torch.__version__, \
'torchvision', torchvision.__version__, 'open_clip', open_clip.__version__)"
"$python" -m pytest -q -p no:cacheprovider -rs tests/query/test_clip.py tests/query/test_clap.py \
    -k "open_clip or laion_clap" "$@"
