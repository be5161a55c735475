"""The loop: entry points, state, progress and callback dispatch."""

from torchkit.loop.duration import Duration
from torchkit.loop.evaluate import evaluate
from torchkit.loop.evaluators import EvalSet, Evaluators
from torchkit.loop.fit import fit
from torchkit.loop.predict import predict
from torchkit.loop.progress import Progress
from torchkit.loop.state import ActivePhase, EntryPoint, Phase, PhaseState, State
from torchkit.loop.test import test
from torchkit.loop.train import train

__all__ = [
    "ActivePhase",
    "Duration",
    "EntryPoint",
    "EvalSet",
    "Evaluators",
    "Phase",
    "PhaseState",
    "Progress",
    "State",
    "evaluate",
    "fit",
    "predict",
    "test",
    "train",
]
