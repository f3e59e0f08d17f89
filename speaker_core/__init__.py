"""speaker_core: NeMo's speaker-embedding models (SpeakerNet, ECAPA-TDNN, TitaNet) in plain PyTorch.

>>> import speaker_core as sc
>>> # model = sc.load_model()                     # shipped default checkpoint, no download
>>> # model.verify("a.wav", "b.wav")              # VerifyResult(score, same_speaker, threshold)
"""
from .api import Recognizer, VerifyResult, available_models, load_model
from .audio import AudioError
from .checkpoint import CheckpointError

__all__ = ["load_model", "Recognizer", "VerifyResult", "available_models", "AudioError", "CheckpointError", "Gallery"]


def __getattr__(name):
    if name == "Gallery":  # imported lazily: the gallery pulls in sqlite only when used
        from .gallery import Gallery

        return Gallery
    raise AttributeError(name)
