#!/bin/bash
# Rule 36 as it ran in session 25 (tools/rules/rule36.txt); about 25 minutes on 2 CPU cores.
set -x
cd "$(dirname "$0")/../.."   # the repository root
mkdir -p runs/s25 runs/s25w runs/s25-logs
cp checkpoints/speakernet-m.pt runs/s25/ && cp checkpoints/speakernet-m.pt runs/s25w/
python -m speaker_core calibrate checkpoints/ecapa-small.pt --train data/train.jsonl --dev data/dev.jsonl --edges canonical --window 0 --out runs/s25w/ecapa-small.pt
python -m speaker_core fuse runs/s25w/ecapa-speakernet-fusion.pt runs/s25w/ecapa-small.pt:0.7 runs/s25w/speakernet-m.pt:0.3 --dev data/dev.jsonl
F=checkpoints/ecapa-speakernet-fusion.pt; FE=runs/s25w/ecapa-speakernet-fusion.pt
python tools/compare_checkpoints.py $F $FE > runs/s25-logs/w_c_clean.txt 2>&1
python tools/compare_checkpoints.py $F $FE --pad-edges 1.5 --pad-side second > runs/s25-logs/w_c_one.txt 2>&1
python tools/compare_checkpoints.py $F $FE --crop 2 > runs/s25-logs/w_c_crop2.txt 2>&1
python tools/compare_checkpoints.py $F $FE --pad-edges 1.5 > runs/s25-logs/w_c_both.txt 2>&1
python -m speaker_core evaluate $FE data/dev.jsonl --pad-edges 1.5 --pad-side second --out runs/s25w/eval_FE0_one > runs/s25-logs/w_e_FE_one.txt 2>&1
python tools/compare_checkpoints.py checkpoints/ecapa-small.pt runs/s25w/ecapa-small.pt > runs/s25-logs/w_m_clean.txt 2>&1
python tools/compare_checkpoints.py checkpoints/ecapa-small.pt runs/s25w/ecapa-small.pt --pad-edges 1.5 --pad-side second > runs/s25-logs/w_m_one.txt 2>&1
echo DONE
