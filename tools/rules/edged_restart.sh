#!/bin/bash
# The run and measurements shared by rules 39-41, 43 and 44 (one fusion member warm-restarted on canonically
# edged clips): train, export the last epoch, average it with the member it started from (rules 39, 40, 43, 44;
# AVG=0 in rule 41 keeps the restart alone), calibrate, then fusion_bars.sh. Called by rule39.sh-rule41.sh,
# rule43.sh and rule44.sh, which set (exported or on the command line):
#   M member (ecapa-small | speakernet-m), GIT commit holding the baseline, R run folder, L log folder,
#   B baseline folder, SEED, MIN training minutes, RAW averaged file's name, EVAL evaluate output name,
#   AVG 1 (default) to average, 0 to calibrate the exported restart alone,
#   INIT (default $B/$M.pt) the member the restart starts from and is averaged with (rule 44: rule 43's SM2).
# "measure" as the first argument skips the training. Run from the repository root.
set -x
mkdir -p $R/cand $L $B
for f in ecapa-small.pt speakernet-m.pt ecapa-speakernet-fusion.pt; do
  [ -f $B/$f ] || git show $GIT:checkpoints/$f > $B/$f
done
INIT=${INIT:-$B/$M.pt}
SET="init=$INIT out=$R seed=$SEED threads=2 teacher.path=data/teacher_crops_edges.npz
  teacher.weight=2.0 augment.p_edges=0.3 augment.p_speed=0.0 batch_size=64 optim.lr=0.001 optim.warmup_ratio=0.03
  loss.margin_warmup_epochs=1 epochs=200 max_minutes=$MIN val.every=5 data.speaker_speeds=[0.9,1.1]
  data.p_speaker_speed=0.5 data.edges=canonical"
if [ "$1" != measure ]; then
  python -m speaker_core train configs/$M.yaml --set $SET > $L/train.txt 2>&1
  python -m speaker_core train configs/$M.yaml --set $SET --export-from last > $L/export.txt 2>&1
fi
if [ "${AVG:-1}" = 1 ]; then
  python tools/average_checkpoints.py $R/cand/$RAW $INIT $R/export.pt --name $M
  IN=$R/cand/$RAW
else
  IN=$R/export.pt   # the restart alone
fi
if [ "$M" = speakernet-m ]; then WHOLE="--window 0"; else WHOLE=""; fi   # speakernet-m embeds whole clips
python -m speaker_core calibrate $IN --train data/train.jsonl --dev data/dev.jsonl $WHOLE \
  --edges canonical --out $R/cand/$M.pt > $L/calibrate.txt 2>&1
bash tools/rules/fusion_bars.sh $B $R/cand $M $L $EVAL
echo DONE
