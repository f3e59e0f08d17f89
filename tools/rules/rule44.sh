#!/bin/bash
# Rule 44's run and measurements (tools/rules/rule44.txt), in the rule's order; stopping at the first failed bar
# is left to the reader: every number is printed. Run from anywhere; 5 min for the head and 75 of training, then
# ~15 min.
# It starts from rule 43's SM2 (runs/s30-s/cand/speakernet-m.pt: run tools/rules/rule43.sh first). The baseline is
# the session-28 default (unchanged since), taken from git (d2b9ab7) as rule43.sh takes it.
cd "$(dirname "$0")/../.."   # the repository root
M=speakernet-m GIT=d2b9ab7 R=runs/s31-s L=runs/s31-logs B=runs/s30-F SEED=441 MIN=75 RAW=sm3-raw.pt EVAL=eval_FSM3 \
  INIT=runs/s30-s/cand/speakernet-m.pt bash tools/rules/edged_restart.sh "$@"
