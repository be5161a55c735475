"""Multi-stage runs: ``run_stages`` chains ``Stage``s, checkpointed and resumable."""

from torchkit.stages.run import StageResult, run_stages, stage_dir
from torchkit.stages.stage import Stage

__all__ = ["Stage", "StageResult", "run_stages", "stage_dir"]
