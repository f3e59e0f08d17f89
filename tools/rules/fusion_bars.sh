#!/bin/bash
# The steps shared by rules 38-40 once a candidate member is calibrated: fuse it with the baseline's other member
# at 0.7 / 0.3, then measure bars 1-4 and 6 against the baseline fusion.
#   bash tools/rules/fusion_bars.sh BASE_DIR CAND_DIR MEMBER LOGDIR EVAL_NAME
# BASE_DIR holds the baseline's three files, CAND_DIR the calibrated candidate MEMBER.pt (ecapa-small or
# speakernet-m). Run from the repository root; every number goes to LOGDIR.
set -x
B=$1; D=$2; M=$3; L=$4; E=$5
if [ "$M" = ecapa-small ]; then O=speakernet-m; else O=ecapa-small; fi
cp $B/$O.pt $D/
python -m speaker_core fuse $D/ecapa-speakernet-fusion.pt $D/ecapa-small.pt:0.7 $D/speakernet-m.pt:0.3 \
  --dev data/dev.jsonl > $L/fuse.txt 2>&1
F=$B/ecapa-speakernet-fusion.pt; C=$D/ecapa-speakernet-fusion.pt
python tools/compare_checkpoints.py $F $C --swap-edges > $L/b1_swapped.txt 2>&1             # bar 1
python tools/compare_checkpoints.py $F $C > $L/b2_clean.txt 2>&1                            # bar 2
python tools/compare_checkpoints.py $F $C --swap-edges --pad-edges 1.5 --pad-side second \
  > $L/b3_swapped_one.txt 2>&1                                                              # bar 3
python -m speaker_core evaluate $C data/dev.jsonl --out $D/$E > $L/b4_eval.txt 2>&1         # bar 4 (long pairs)
python tools/compare_checkpoints.py $B/$M.pt $D/$M.pt --swap-edges > $L/b6_member_swapped.txt 2>&1   # bar 6
