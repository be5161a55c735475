"""Parsers of the subcommands, built from the entry points' real signatures."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Optional

from jsonargparse import ActionConfigFile, ArgumentParser

from torchkit.cli._batches import Batches

__all__ = ["SUBCOMMANDS", "Subcommand", "build_parser", "entry_point_keys", "instantiate"]

Resume = Literal["never", "auto", "force"]
ComponentList = list[dict[str, Any] | str] | None


@dataclass(frozen=True)
class Subcommand:
    """One subcommand: its entry point, unit base class and dataloader keys."""

    name: str
    entry_point: str  # the torchkit function name
    unit_base: str  # "TrainUnit" / "EvalUnit" / "TestUnit" / "PredictUnit"
    loaders: tuple[str, ...]  # keys in the config, in the entry point's positional order
    help: str
    optional_loaders: tuple[str, ...] = ()  # keyword-only loaders the config may give

    @property
    def function(self) -> Callable[..., Any]:
        import torchkit

        fn: Callable[..., Any] = getattr(torchkit, self.entry_point)
        return fn

    @property
    def trains(self) -> bool:
        return self.entry_point in ("fit", "train")


SUBCOMMANDS: dict[str, Subcommand] = {
    s.name: s
    for s in (
        Subcommand(
            "fit",
            "fit",
            "TrainUnit",
            ("train_dataloader", "eval_dataloader"),
            "train with periodic evaluation (torchkit.fit)",
            ("test_dataloader",),
        ),
        Subcommand(
            "train", "train", "TrainUnit", ("train_dataloader",), "train only (torchkit.train)"
        ),
        Subcommand(
            "evaluate",
            "evaluate",
            "EvalUnit",
            ("eval_dataloader",),
            "evaluate once, optionally from a checkpoint (torchkit.evaluate)",
        ),
        Subcommand(
            "test",
            "test",
            "TestUnit",
            ("test_dataloader",),
            "test once on held-out data, optionally from a checkpoint (torchkit.test)",
        ),
        Subcommand(
            "predict",
            "predict",
            "PredictUnit",
            ("predict_dataloader",),
            "predict once, optionally from a checkpoint (torchkit.predict)",
        ),
    )
}

# The entry points' own parameters the CLI fills itself rather than from the config.
_FILLED_BY_CLI = {"callbacks", "timer"}


def instantiate(parser: ArgumentParser, cfg: Any) -> Any:
    """``parser.instantiate(cfg)`` (named ``instantiate_classes`` before jsonargparse 4.49)."""
    build = getattr(parser, "instantiate", None) or parser.instantiate_classes
    return build(cfg)


def entry_point_keys(sub: Subcommand) -> list[str]:
    """The entry point's keyword arguments the config sets (``max_epochs``...)."""
    params = inspect.signature(sub.function).parameters.values()
    skip = {*_FILLED_BY_CLI, *sub.optional_loaders}
    return [p.name for p in params if p.kind is p.KEYWORD_ONLY and p.name not in skip]


def passed_limits(sub: Subcommand, cfg: Any) -> dict[str, Any]:
    """The entry point's keyword arguments from ``cfg``, leaving out values equal to the
    signature's defaults, so the entry point sees its own default objects."""
    params = inspect.signature(sub.function).parameters
    return {k: cfg[k] for k in entry_point_keys(sub) if cfg[k] != params[k].default}


def build_parser(sub: Subcommand) -> ArgumentParser:
    """The jsonargparse parser of ``torchkit <sub.name>``."""
    import torchkit.units as units

    fn = sub.function
    params = list(inspect.signature(fn).parameters.values())
    positional = [p.name for p in params if p.kind is not p.KEYWORD_ONLY]
    parser = ArgumentParser(
        prog=f"torchkit {sub.name}",
        description=f"torchkit {sub.name}: {sub.help}. Keys come from --config files (later "
        "ones win) and --key overrides; a config file is code (class_path imports modules).",
        exit_on_error=False,
        allow_abbrev=False,  # --max_epoch is a typo, not --max_epochs
    )
    parser.add_argument("--config", action=ActionConfigFile, help="a YAML config file (repeatable)")
    parser.add_argument(
        "--unit",
        type=getattr(units, sub.unit_base),
        required=True,
        help=f"the unit: class_path of a torchkit.units.{sub.unit_base} subclass (e.g. "
        "torchkit.units.SupervisedUnit) and its init_args",
    )
    for key in sub.loaders:
        parser.add_argument(
            f"--{key}",
            type=Batches,
            required=True,
            help="class_path of an iterable of batches (e.g. torch.utils.data.DataLoader)",
        )
    for key in sub.optional_loaders:
        parser.add_argument(
            f"--{key}",
            type=Optional[Batches],  # noqa: UP045 - jsonargparse reads typing.Optional
            default=None,
            help="class_path of an iterable of batches, or leave it out",
        )
    parser.add_function_arguments(
        fn,
        skip={*positional, *_FILLED_BY_CLI, *sub.optional_loaders},
        as_group=False,
        fail_untyped=False,
    )
    # A default recognised by identity (fit's ``evaluate_every_n_epochs``, an ``int``
    # subclass) is shown and dumped as the plain value; ``passed_limits`` leaves it out.
    parser.set_defaults(
        {p.name: int(p.default) for p in params if type(p.default) not in (int, bool)
         and isinstance(p.default, int)}
    )  # fmt: skip
    _add_run_arguments(parser, sub)
    return parser


def _add_run_arguments(parser: ArgumentParser, sub: Subcommand) -> None:
    parser.add_argument(
        "--callbacks",
        type=ComponentList,
        default=None,
        help="callbacks: class_path (short names for torchkit's own, e.g. TQDMProgressBar) "
        "and init_args; dirpath/loggers left out default to run_dir and the loggers list",
    )
    parser.add_argument(
        "--loggers",
        type=ComponentList,
        default=None,
        help="metric loggers (e.g. CSVLogger), wrapped in one MetricsLogger; path left out "
        "defaults to run_dir/logs",
    )
    parser.add_argument(
        "--log_every_n_steps",
        type=int,
        default=10,
        help="the MetricsLogger interval for the loggers list",
    )
    parser.add_argument(
        "--seed",
        type=int | None,
        default=None,
        help="seed python, numpy and torch before anything is built",
    )
    parser.add_argument(
        "--run_dir",
        type=str | None,
        default=None,
        help="run directory (fsspec URL): config.yaml, checkpoints/ and logs/ go under it",
    )
    parser.add_argument(
        "--resume",
        type=Resume,
        default="auto",
        help="never: a fresh run dir only; auto: continue the run in run_dir when its config "
        "matches; force: continue even when it does not",
    )
    if not sub.trains:
        parser.add_argument(
            "--checkpoint",
            type=str | None,
            default=None,
            help="restore before running: latest, best, best:<metric>:<min|max> (under "
            "run_dir/checkpoints) or a checkpoint URL",
        )
