#!/bin/bash
# Rule 42 (tools/rules/rule42.txt): no training; rule 41's exported run averaged with the session-28 member, then
# calibrate and every bar, as rule 40 did. Needs rule 41's runs/s29-r/export.pt. ~20 min.
cd "$(dirname "$0")/../.."   # the repository root
mkdir -p runs/s29-a
cp runs/s29-r/export.pt runs/s29-a/export.pt
M=ecapa-small GIT=273c72e R=runs/s29-a L=runs/s29-logs42 B=runs/s29-F SEED=411 MIN=90 AVG=1 RAW=rm3-raw.pt \
  EVAL=eval_FRM3 bash tools/rules/edged_restart.sh measure
