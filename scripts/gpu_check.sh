#!/usr/bin/env bash
# The GPU check in two steps (README.md, "### GPU").
#
#   bash scripts/gpu_check.sh prepare   # here, in the repo, with the dev environment (.venv) set up
#   bash scripts/gpu_check.sh run       # on the CUDA machine, in the repo root, with .gpucheck/ carried along
#
# prepare fills the ignored folder .gpucheck/ (about 25 MB) with what the CUDA machine lacks and cannot download:
#   clip.mp4                the clip for the clip cases (default ../shared/data/football_dribble.mp4; CLIP=path)
#   site/mediapipe/...      only the Apache-2.0 files Troupe reads from the mediapipe 0.10.21 wheel (its three
#                           .tflite models and the flatbuffers schema module), as a small package without
#                           mediapipe's runtime: the backend runs those networks in torch itself
#   models/                 the people-finding models installed by `python -m backend models install` (MoveNet, NanoDet)
# The CUDA machine's own python3 provides torch (CUDA), numpy, scipy, OpenCV, ONNX Runtime, scikit-image, tqdm
# and flatbuffers, so no virtual environment travels (a CUDA torch wheel alone is far over the 64 MiB carry limit).
#
# run writes gpu_check.md, gpu_check.json and gpu_check.log into $OUT (else out/gpu_check) and returns the
# suite's exit status (0: every case ran; 1: a case raised, its error is in the report).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=.gpucheck

prepare() {
    local py=${PYTHON:-.venv/bin/python}
    local clip=${CLIP:-../shared/data/football_dribble.mp4}
    [ -x "$py" ] || { echo "gpu_check: no $py: run 'python3 dev.py setup' first (or set PYTHON)" >&2; exit 1; }
    [ -f "$clip" ] || { echo "gpu_check: no clip at $clip (set CLIP=path)" >&2; exit 1; }
    rm -rf "$DIR" && mkdir -p "$DIR/site" "$DIR/models"
    cp "$clip" "$DIR/clip.mp4"
    "$py" - "$DIR" <<'EOF'
import importlib.util
import shutil
import sys
from pathlib import Path

from backend.detection.models import BUNDLED, model_path

out = Path(sys.argv[1])
spec = importlib.util.find_spec("mediapipe")
if spec is None or spec.origin is None:
    sys.exit("gpu_check: mediapipe is not installed in this environment (pip install mediapipe==0.10.21)")
source = Path(spec.origin).parent
package = out / "site" / "mediapipe"
for relative in list(BUNDLED.values()) + ["tasks/metadata/schema_py_generated.py"]:
    (package / relative).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source / relative, package / relative)
for folder in ("", "tasks", "tasks/metadata"):
    (package / folder / "__init__.py").write_text('"""Model files and schema from mediapipe 0.10.21 (Apache-2.0), '
                                                  'for the GPU check; no mediapipe runtime."""\n')
for name in ("movenet_multipose", "nanodet"):
    folder = model_path(name).parent
    shutil.copytree(folder, out / "models" / folder.name, dirs_exist_ok=True)
print(f"gpu_check: {out} ready")
EOF
    du -sh "$DIR"
}

run() {
    [ -d "$DIR/site/mediapipe" ] || { echo "gpu_check: $DIR is missing: run 'bash scripts/gpu_check.sh prepare' here and carry $DIR" >&2; exit 1; }
    local out=${OUT:-out/gpu_check}
    mkdir -p "$out"
    export PYTHONPATH="$PWD/$DIR/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
    export TROUPE_MODELS_DIR="$PWD/$DIR/models" TROUPE_CACHE_DIR=/tmp/troupe-gpu-check-cache PYTHONUNBUFFERED=1
    local py=${PYTHON:-python3}
    "$py" -c 'import sys, torch, numpy; print("python", sys.version.split()[0], "torch", torch.__version__, "numpy", numpy.__version__, "cuda", torch.cuda.is_available())' | tee "$out/gpu_check.log"
    set +e
    timeout "${TIMEOUT_S:-330}" "$py" -m backend bench gpu --out "$out" --clip "$DIR/clip.mp4" \
        --budget-s "${BUDGET_S:-280}" --device "${DEVICE:-cuda}" "$@" 2>&1 | tee -a "$out/gpu_check.log"
    local status=${PIPESTATUS[0]}
    set -e
    [ "$status" = 124 ] && echo "gpu_check: killed at ${TIMEOUT_S:-330} s; the report holds the cases done" | tee -a "$out/gpu_check.log"
    return "$status"
}

case "${1:-}" in
    prepare) prepare ;;
    run) shift; run "$@" ;;
    *) echo "usage: bash scripts/gpu_check.sh prepare | run [extra options of 'python -m backend bench gpu']" >&2; exit 2 ;;
esac
