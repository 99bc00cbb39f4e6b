"""vitviz: vision transformers stage by stage, computed by real modules (no streamlit in here)."""
from .images import ImageError, load_image
from .preprocess import Preprocessing, preprocess
from .trace import Trace, tap_names, trace
from .weights import HUB_IDS, ModelLoadError, is_trained, load_model, presets

__all__ = [
    "HUB_IDS",
    "ImageError",
    "ModelLoadError",
    "Preprocessing",
    "Trace",
    "is_trained",
    "load_image",
    "load_model",
    "preprocess",
    "presets",
    "tap_names",
    "trace",
]
