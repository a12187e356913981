#!/usr/bin/env bash
# What CI cannot check, for a machine with a CUDA GPU: the tests marked
# `cuda` and the README's GPU benchmarks (inference, then a training step).
#
#   .ci/gpu_check.sh OUT_DIR [tests] [inference] [train]     (default: all three)
#
# Needs an environment with CUDA PyTorch, the packages of requirements/ and this
# project importable (`pip install -e .`, or the repository on PYTHONPATH); the
# tests also need cityscapesscripts (and its pyquaternion) to generate their data.
# Each step writes OUT_DIR/<step>.log, and the benchmarks OUT_DIR/gpu_*.json, which
# they update after each candidate: a step stopped by its time limit (STEP_LIMIT_S,
# default 420 s) keeps what it measured. The exit status is 1 if any step failed.
set -u
out=${1:?usage: .ci/gpu_check.sh OUT_DIR [tests] [inference] [train]}
shift
steps=${*:-tests inference train}
py=${PYTHON:-python3}
limit=${STEP_LIMIT_S:-420}
export PYTHONUNBUFFERED=1
out=$(mkdir -p "$out" && cd "$out" && pwd) || exit 1
cd "$(dirname "$0")/.."

"$py" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; \
print('device:', torch.cuda.get_device_name(), '| torch', torch.__version__)" || exit 1

status=0
step() {  # step NAME COMMAND...
    local name=$1 start=$SECONDS rc
    shift
    echo "== $name: $*"
    timeout "$limit" "$@" >"$out/$name.log" 2>&1
    rc=$?
    echo "== $name: exit $rc after $((SECONDS - start)) s (log: $out/$name.log)"
    tail -n 25 "$out/$name.log"
    [ "$rc" -eq 0 ] || status=1
}

# Same generic settings for every candidate; the fast path (CUDA graphs) is
# timed next to eager in the same run.
common=(--device cuda --dtype bf16 --cudnn-benchmark --force)
for s in $steps; do
    case $s in
    tests)
        step tests "$py" -m pytest tests -q -m cuda ;;
    inference)
        step inference "$py" tools/benchmark.py "${common[@]}" \
            --mode inference --scope both --shapes 1024x2048 512x1024 \
            --candidates repmlp-deploy resnet101 repmlp-train swin-t resnet50 \
            --cuda-graph --profile --out-json "$out/gpu_inference.json" ;;
    train)
        step train "$py" tools/benchmark.py "${common[@]}" \
            --mode train --scope both --train-shape 512 1024 --train-batch 2 \
            --candidates repmlp-train swin-t resnet101 resnet50 \
            --out-json "$out/gpu_train.json" ;;
    *)
        echo "unknown step '$s' (tests, inference, train)"; status=1 ;;
    esac
done
exit $status
