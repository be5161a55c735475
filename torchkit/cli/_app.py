"""One invocation: parse, validate, init_from_env, seed, build, write config, restore, run."""

from __future__ import annotations

import difflib
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from torchkit.cli._components import Component, build_component, check_components
from torchkit.cli._errors import CLIError, from_parser_error
from torchkit.cli._parser import (
    SUBCOMMANDS,
    Subcommand,
    build_parser,
    entry_point_keys,
    instantiate,
    passed_limits,
)
from torchkit.cli._run_dir import RunDirPlan, plan_run_dir, semantic_view, write_config
from torchkit.utils.fs import join_url, url_to_fs

__all__ = ["run"]


_HELP = """usage: torchkit <subcommand> [--config FILE ...] [--key value ...]

Config-file runs of torchkit's entry points (jsonargparse). Subcommands:
{rows}

Run `torchkit <subcommand> --help` for its keys, `--print_config` for a full config.
A config file is code: class_path imports and runs modules; run only configs you trust.
"""


@dataclass
class Prepared:
    """A validated invocation: everything decided, nothing built or written yet."""

    sub: Subcommand
    parser: Any
    cfg: Any
    callbacks: list[Component]
    loggers: list[Component]
    plan: RunDirPlan | None
    checkpoint: str | None
    config_text: str
    limits: dict[str, Any] = field(default_factory=dict)


def run(argv: list[str]) -> int:
    """Dispatch ``argv`` (no program name): 0 on success, ``SystemExit(2)`` on bad input."""
    if not argv or argv[0] in ("-h", "--help"):
        rows = "\n".join(f"  {s.name:<16}{s.help}" for s in SUBCOMMANDS.values())
        rows += "\n  validate-config parse and type-check a config for a subcommand, build nothing"
        print(_HELP.format(rows=rows), file=sys.stdout if argv else sys.stderr)
        if not argv:
            raise SystemExit(2)
        return 0
    name, rest = argv[0], argv[1:]
    check_only = name == "validate-config"
    if check_only:
        name, rest = (rest[0], rest[1:]) if rest and rest[0] in SUBCOMMANDS else ("fit", rest)
    if name not in SUBCOMMANDS:
        close = difflib.get_close_matches(name, [*SUBCOMMANDS, "validate-config"], n=1)
        _fail(
            CLIError(
                "subcommand",
                name,
                "expected one of " + ", ".join([*SUBCOMMANDS, "validate-config"]),
                f"Did you mean {close[0]!r}?" if close else "Run torchkit --help",
            )
        )
    # like `python -m`: modules next to where the command runs are importable by class_path
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        prepared = prepare(SUBCOMMANDS[name], rest)
    except CLIError as exc:
        _fail(exc)
    if check_only:
        print(f"the config is valid for torchkit {name}")
        return 0
    execute(prepared)
    return 0


def _fail(exc: CLIError) -> Any:
    print(f"torchkit: {exc}", file=sys.stderr)
    raise SystemExit(2)


def prepare(sub: Subcommand, argv: list[str]) -> Prepared:
    """Parse and validate everything; read (never write) the run directory.

    Raises:
        CLIError: any bad input, with the dotted key, the value and a fix.
    """
    _check_config_files(argv)
    parser = build_parser(sub)
    try:
        cfg = parser.parse_args(_with_run_config(sub, argv))
    except SystemExit:
        raise
    except Exception as exc:  # jsonargparse's ArgumentError, also for unreadable files
        raise from_parser_error(str(exc), [a.dest for a in parser._actions]) from None
    limits = passed_limits(sub, cfg)
    _check_limits(sub, limits)
    if cfg.log_every_n_steps < 1:
        raise CLIError(
            "log_every_n_steps",
            cfg.log_every_n_steps,
            "expected an int >= 1",
            "Pass e.g. --log_every_n_steps 10",
        )
    run_dir = cfg.run_dir
    log_dir = None if run_dir is None else join_url(run_dir, "logs", *_log_subdir(sub))
    ckpt_dir = None if run_dir is None else join_url(run_dir, "checkpoints")
    loggers = check_components(
        cfg.loggers, "loggers", log_dir=log_dir, ckpt_dir=None, has_loggers=False
    )
    callbacks = check_components(
        cfg.callbacks, "callbacks", log_dir=log_dir, ckpt_dir=ckpt_dir, has_loggers=bool(loggers)
    )
    text = parser.dump(cfg)
    plan = None
    if run_dir is not None and sub.trains:
        semantic = semantic_view(_as_dict(parser, cfg), entry_point_keys(sub))
        plan = plan_run_dir(run_dir, cfg.resume, semantic)
    checkpoint = _resolve_checkpoint(sub, cfg, ckpt_dir)
    return Prepared(sub, parser, cfg, callbacks, loggers, plan, checkpoint, text, limits)


def _check_config_files(argv: list[str]) -> None:
    """Each ``--config`` file exists and is complete YAML (a clear error before parsing)."""
    import yaml

    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            path = argv[i + 1]
        elif arg.startswith("--config="):
            path = arg.partition("=")[2]
        else:
            continue
        if "\n" in path or path.lstrip().startswith("{"):
            continue  # an inline YAML/JSON string, parsed by jsonargparse
        try:
            fs, inner = url_to_fs(path)
            with fs.open(inner, "r") as f:
                yaml.safe_load(f)
        except OSError as exc:
            raise CLIError(
                "config",
                path,
                f"expected a readable file ({type(exc).__name__}: {exc})",
                "Check the path and its permissions",
            ) from None
        except yaml.YAMLError as exc:
            detail = " ".join(str(exc).split())
            raise CLIError(
                "config",
                path,
                f"expected complete, valid YAML ({detail})",
                "Fix the file at the line shown (it may be truncated)",
            ) from None


def _with_run_config(sub: Subcommand, argv: list[str]) -> list[str]:
    """``evaluate``/``test``/``predict`` on a run dir without ``--config``: start from its
    config.yaml.

    Only the unit, the subcommand's data (``eval_dataloader`` / ``test_dataloader``) and the
    seed are taken: the training run's callbacks, loggers and limits are not the evaluation's.
    """
    if sub.trains or "--config" in argv or not any(a.startswith("--run_dir") for a in argv):
        return argv
    import yaml

    i = next(i for i, a in enumerate(argv) if a.startswith("--run_dir"))
    run_dir = argv[i].partition("=")[2] or (argv[i + 1] if i + 1 < len(argv) else "")
    fs, root = url_to_fs(run_dir)
    try:
        with fs.open(join_url(root, "config.yaml"), "r") as f:
            saved = yaml.safe_load(f) or {}
    except FileNotFoundError:
        return argv
    except (OSError, yaml.YAMLError) as exc:
        raise CLIError(
            "run_dir",
            run_dir,
            f"expected a readable config.yaml ({exc})",
            "Pass --config explicitly",
        ) from None
    keep = {k: saved[k] for k in ("unit", *sub.loaders, "seed") if k in saved}
    return ["--config", yaml.safe_dump(keep), *argv]


def _as_dict(parser: Any, cfg: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(parser.dump(cfg, format="json"))
    return data


def _log_subdir(sub: Subcommand) -> tuple[str, ...]:
    return () if sub.trains else (sub.name,)


def _check_limits(sub: Subcommand, limits: dict[str, Any]) -> None:
    """The entry point's own argument checks, run before anything is built."""
    from torchkit.loop.state import check_every_n, check_limit

    for key, value in limits.items():
        try:
            if key.startswith("max_") and not isinstance(value, str):
                check_limit(key, value)
            elif key.startswith("evaluate_every_n_"):
                check_every_n(key, value)
        except (TypeError, ValueError) as exc:
            raise CLIError(
                key, value, str(exc), f"Pass e.g. --{key} 10, or leave it unset"
            ) from None


def _resolve_checkpoint(sub: Subcommand, cfg: Any, ckpt_dir: str | None) -> str | None:
    """``--checkpoint latest|best|best:<metric>:<mode>|URL`` as a checkpoint URL (or None)."""
    spec = None if sub.trains else cfg.checkpoint
    if spec is None:
        return None
    if spec != "latest" and not spec.startswith("best"):
        return str(spec)
    if ckpt_dir is None:
        raise CLIError(
            "checkpoint",
            spec,
            "expected run_dir to be set for latest/best",
            "Pass --run_dir of the training run, or a checkpoint URL",
        )
    from torchkit.checkpoint import get_best_checkpoint_path, get_latest_checkpoint_path

    if spec == "latest":
        path = get_latest_checkpoint_path(ckpt_dir)
    else:
        metric, mode = _best_metric(spec, cfg.run_dir)
        path = get_best_checkpoint_path(ckpt_dir, metric, mode)
    if path is None:
        raise CLIError(
            "checkpoint",
            spec,
            f"expected a committed checkpoint under {ckpt_dir}",
            "Train with a DistributedCheckpointSaver first, or pass a URL",
        )
    return path


def _best_metric(spec: str, run_dir: str) -> tuple[str, str]:
    parts = spec.split(":")
    if len(parts) == 3 and parts[2] in ("min", "max"):
        return parts[1], parts[2]
    if spec == "best":
        found = _best_config_of_run(run_dir)
        if found is not None:
            return found
    raise CLIError(
        "checkpoint",
        spec,
        "expected best:<metric>:<min|max> (plain best needs the "
        "run's config.yaml to name a best_checkpoint_config)",
        "Pass e.g. --checkpoint best:eval/accuracy:max",
    )


def _best_config_of_run(run_dir: str) -> tuple[str, str] | None:
    import yaml

    fs, root = url_to_fs(run_dir)
    try:
        with fs.open(join_url(root, "config.yaml"), "r") as f:
            saved = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError):
        return None
    for cb in saved.get("callbacks") or []:
        best = (
            (cb.get("init_args") or {}).get("best_checkpoint_config")
            if isinstance(cb, dict)
            else None
        )
        if isinstance(best, dict) and "monitored_metric" in best:
            return str(best["monitored_metric"]), str(best.get("mode", "min"))
    return None


def execute(p: Prepared) -> None:
    """init_from_env -> seed -> instantiate -> write config -> restore -> run."""
    from torchkit.utils import get_global_rank, init_from_env, seed

    init_from_env()
    if p.cfg.seed is not None:
        seed(p.cfg.seed)
    built = instantiate(p.parser, p.cfg)
    loggers = [build_component(c, []) for c in p.loggers]
    callbacks = _callbacks(p, loggers)
    if p.plan is not None and get_global_rank() == 0:
        write_config(p.plan, p.config_text)
    loaders = [built[k] for k in p.sub.loaders]
    given = {k: built[k] for k in p.sub.optional_loaders if built[k] is not None}
    _restore(p, built.unit, loaders, callbacks)
    try:
        p.sub.function(built.unit, *loaders, callbacks=callbacks, **given, **p.limits)
    finally:
        for lg in loggers:
            lg.close()


def _callbacks(p: Prepared, loggers: list[Any]) -> list[Any]:
    from torchkit.callbacks import MetricsLogger

    callbacks = [build_component(c, loggers) for c in p.callbacks]
    if loggers and not any(isinstance(cb, MetricsLogger) for cb in callbacks):
        callbacks.insert(0, MetricsLogger(loggers, every_n_steps=p.cfg.log_every_n_steps))
    return callbacks


def _restore(p: Prepared, unit: Any, loaders: list[Any], callbacks: list[Any]) -> None:
    from torchkit.callbacks import BaseCheckpointer, DistributedCheckpointSaver

    kw = dict(zip(("train_dataloader", "eval_dataloader"), loaders)) if p.sub.trains else {}
    if p.checkpoint is not None:
        DistributedCheckpointSaver.restore(p.checkpoint, unit)
    elif p.plan is not None and p.plan.resuming:
        savers = [cb for cb in callbacks if isinstance(cb, BaseCheckpointer)]
        dirpath = savers[0].dirpath if savers else join_url(p.plan.run_dir, "checkpoints")
        restored = DistributedCheckpointSaver.restore_from_latest(dirpath, unit, **kw)
        progress = getattr(unit, "train_progress", None)
        where = (
            f"from step {progress.num_steps_completed} (epoch {progress.num_epochs_completed})"
            if restored and progress is not None
            else "from the start: no committed checkpoint yet"
        )
        _note(f"continuing the run in {p.plan.run_dir} {where}; config in {p.plan.config_name}")


def _note(message: str) -> None:
    """A one-line status message on rank 0's stderr."""
    from torchkit.utils import get_global_rank

    if get_global_rank() == 0:
        print(f"torchkit: {message}", file=sys.stderr)
