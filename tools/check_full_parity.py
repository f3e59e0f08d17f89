"""Compare full-size NeMo models (made by make_nemo_fixtures.py --size full) with speaker_core, on seen and unseen clips.

    python tools/check_full_parity.py /work/nemo_full

Prints, per model and clip set, the worst element-wise deviation relative to the between-clip spread of NeMo's
embeddings (the issue's bar is 1e-4).
"""
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import speaker_core as sc  # noqa: E402

root = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/nemo_full")
torch.set_num_threads(2)
worst = 0.0
for name in ["speakernet-m", "speakernet-l", "ecapa-tdnn", "titanet-s", "titanet-l"]:
    model = sc.load_model(root / f"{name}.nemo", device="cpu")
    for tag in ("", "_unseen"):
        ref = np.load(root / f"{name}{tag}.npz", allow_pickle=False)
        ours = np.stack([model.embed_file(root / str(c), normalize=False) for c in ref["clips"]])
        nemo = ref["embeddings"]
        spread = float((nemo.max(0) - nemo.min(0)).max())
        dev = float(np.abs(ours - nemo).max()) / spread
        worst = max(worst, dev)
        print(f"{name:13s} {'unseen' if tag else 'seen':6s} clips={len(nemo)} params={sum(p.numel() for p in model.net.parameters())/1e6:.2f}M "
              f"spread={spread:.3f} max|ours-nemo|/spread={dev:.2e}")
print(f"worst relative deviation: {worst:.2e} ({'PASS' if worst <= 1e-4 else 'FAIL'} at 1e-4)")
