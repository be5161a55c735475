"""Utilities: device, environment, distributed helpers, timers, seeding, filesystems."""

from torchkit.utils.device import copy_data_to_device, map_leaves, record_data_in_stream
from torchkit.utils.distributed import (
    all_gather_tensors,
    barrier,
    get_free_port,
    get_global_rank,
    get_local_rank,
    get_world_size,
    launch_processes,
    spawn_multi_process,
    sync_bool,
)
from torchkit.utils.early_stop_checker import EarlyStopChecker
from torchkit.utils.env import get_device_from_env, init_from_env
from torchkit.utils.flops import measure_flops, peak_flops_for, transformer_flops_per_token
from torchkit.utils.fs import get_filesystem
from torchkit.utils.progress import (
    estimated_steps_in_epoch,
    estimated_steps_in_fit,
    estimated_steps_in_loop,
)
from torchkit.utils.seed import seed
from torchkit.utils.stateful import MultiStateful, Stateful
from torchkit.utils.timer import BoundedTimer, Timer

__all__ = [
    "BoundedTimer",
    "EarlyStopChecker",
    "MultiStateful",
    "Stateful",
    "Timer",
    "all_gather_tensors",
    "barrier",
    "copy_data_to_device",
    "estimated_steps_in_epoch",
    "estimated_steps_in_fit",
    "estimated_steps_in_loop",
    "get_device_from_env",
    "get_filesystem",
    "get_free_port",
    "get_global_rank",
    "get_local_rank",
    "get_world_size",
    "init_from_env",
    "launch_processes",
    "map_leaves",
    "measure_flops",
    "peak_flops_for",
    "record_data_in_stream",
    "seed",
    "spawn_multi_process",
    "sync_bool",
    "transformer_flops_per_token",
]
