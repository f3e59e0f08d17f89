#!/bin/bash
# Rule 57's run and measurements (tools/rules/rule57.txt); every number goes to runs/s39-logs. "measure" as the
# first argument skips the training. Run from anywhere; ~75 min of training, then ~30 min.
cd "$(dirname "$0")/../.."   # the repository root
set -x
B=runs/s39-B R=runs/s39-r L=runs/s39-logs
mkdir -p $B $R/cand $L
for f in ecapa-small.pt speakernet-m.pt ecapa-speakernet-fusion.pt; do
  [ -f $B/$f ] || git show f6ab04a:checkpoints/$f > $B/$f
done
SET="init=$B/ecapa-small.pt out=$R seed=571 threads=2 teacher.path=data/teacher_crops_edges.npz
  teacher.weight=2.0 augment.p_edges=0.3 augment.p_speed=0.0 augment.p_eq=0.5 batch_size=64 optim.lr=0.001
  optim.warmup_ratio=0.03 loss.margin_warmup_epochs=1 epochs=200 max_minutes=75 val.every=5
  data.speaker_speeds=[0.9,1.1] data.p_speaker_speed=0.5 data.edges=canonical data.p_source_noise=0.5"
if [ "$1" != measure ]; then
  python -m speaker_core train configs/ecapa-small.yaml --set $SET > $L/train.txt 2>&1
  python -m speaker_core train configs/ecapa-small.yaml --set $SET --export-from last > $L/export.txt 2>&1
fi
python -m speaker_core calibrate $R/export.pt --train data/train.jsonl --dev data/dev.jsonl --edges canonical \
  --parts 2 --cut words --out $R/cand/ecapa-small.pt > $L/calibrate.txt 2>&1
cp $B/speakernet-m.pt $R/cand/
python -m speaker_core fuse $R/cand/ecapa-speakernet-fusion.pt $R/cand/ecapa-small.pt:0.7 $R/cand/speakernet-m.pt:0.3 \
  --dev data/dev.jsonl --parts 2 --cut words > $L/fuse.txt 2>&1
F=$B/ecapa-speakernet-fusion.pt; C=$R/cand/ecapa-speakernet-fusion.pt
python tools/noise_check.py --channel --checkpoint $C > $L/b1_channel.txt 2>&1                  # bar 1
python tools/compare_checkpoints.py $F $C > $L/b2_clean.txt 2>&1                                # bar 2
python tools/compare_checkpoints.py $F $C --swap-edges > $L/b3_swapped.txt 2>&1                 # bar 3
python tools/noise_check.py --checkpoint $C > $L/b4_noise.txt 2>&1                              # bar 4
echo BARS_DONE
# information only: the member alone against E3
python tools/compare_checkpoints.py $B/ecapa-small.pt $R/cand/ecapa-small.pt > $L/i_member_clean.txt 2>&1
python tools/compare_checkpoints.py $B/ecapa-small.pt $R/cand/ecapa-small.pt --swap-edges > $L/i_member_swapped.txt 2>&1
python tools/noise_check.py --channel --checkpoint $B/ecapa-small.pt > $L/i_base_member_channel.txt 2>&1
python tools/noise_check.py --channel --checkpoint $R/cand/ecapa-small.pt > $L/i_member_channel.txt 2>&1
echo DONE
