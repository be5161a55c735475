"""Live inference models kept in sync with a training loop (import ``torchkit.live``)."""

from torchkit.live.async_evaluator import AsyncEvaluator
from torchkit.live.live_model import LiveModel, Snapshot
from torchkit.live.publish_weights import PublishWeights

__all__ = ["AsyncEvaluator", "LiveModel", "PublishWeights", "Snapshot"]
