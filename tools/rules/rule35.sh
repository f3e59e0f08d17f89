#!/bin/bash
# Rule 35 as it ran in session 25 (tools/rules/rule35.txt); about 25 minutes on 2 CPU cores.
set -x
cd "$(dirname "$0")/../.."   # the repository root
mkdir -p runs/s25 runs/s25w runs/s25-logs
cp checkpoints/speakernet-m.pt runs/s25/ && cp checkpoints/speakernet-m.pt runs/s25w/
python -m speaker_core calibrate checkpoints/ecapa-small.pt --train data/train.jsonl --dev data/dev.jsonl --edges canonical --out runs/s25/ecapa-small.pt
python -m speaker_core fuse runs/s25/ecapa-speakernet-fusion.pt runs/s25/ecapa-small.pt:0.7 runs/s25/speakernet-m.pt:0.3 --dev data/dev.jsonl
F=checkpoints/ecapa-speakernet-fusion.pt; FE=runs/s25/ecapa-speakernet-fusion.pt
python tools/compare_checkpoints.py $F $FE --pad-edges 1.5 --pad-side second > runs/s25-logs/c_one.txt 2>&1
python tools/compare_checkpoints.py $F $FE > runs/s25-logs/c_clean.txt 2>&1
python tools/compare_checkpoints.py $F $FE --crop 2 > runs/s25-logs/c_crop2.txt 2>&1
python tools/compare_checkpoints.py $F $FE --pad-edges 1.5 > runs/s25-logs/c_both.txt 2>&1
python -m speaker_core evaluate $F data/dev.jsonl --pad-edges 1.5 --pad-side second --out runs/s25/eval_F_one > runs/s25-logs/e_F_one.txt 2>&1
python -m speaker_core evaluate $FE data/dev.jsonl --pad-edges 1.5 --pad-side second --out runs/s25/eval_FE_one > runs/s25-logs/e_FE_one.txt 2>&1
python tools/compare_checkpoints.py checkpoints/ecapa-small.pt runs/s25/ecapa-small.pt > runs/s25-logs/m_clean.txt 2>&1
python tools/compare_checkpoints.py checkpoints/ecapa-small.pt runs/s25/ecapa-small.pt --pad-edges 1.5 --pad-side second > runs/s25-logs/m_one.txt 2>&1
echo DONE
