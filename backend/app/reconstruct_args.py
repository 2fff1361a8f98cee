"""The reconstruction options on the command line, for every command that reconstructs (``reconstruct`` one
input, ``batch`` many): one flag per option of the schema (``backend.options.FIELDS``), ``--fit-init``, the
estimators' settings for the help, and the check of what was typed through the schema the service uses.

Standard library only at import time: the command line checks options before it imports torch.
"""

from __future__ import annotations

import argparse
import textwrap
from typing import Any

from backend.estimators.catalog import DEFAULT_ESTIMATOR, available_estimators

FIT_INITIALISERS = ("neutral", "lasor", "lasor-root", "neutral+lasor-root")


def add_reconstruct_options(cmd: argparse.ArgumentParser) -> None:
    """One argument per option of the schema (its flag, type and help) and ``--fit-init``. Every default is
    None, "not given", so the schema's own defaults apply and the checks see what was typed."""
    from backend.options import FIELDS

    for name, spec in FIELDS.items():
        text = spec.help.format(estimators=", ".join(available_estimators()))
        if spec.kind is bool:
            cmd.add_argument(spec.flag, dest=name, action="store_const", const=not spec.default, default=None,
                             help=text)
        elif spec.kind is dict:
            cmd.add_argument(spec.flag, "-O", dest=name, action="append", metavar="NAME=VALUE", help=text)
        else:
            default = f" (default: {spec.default})" if spec.default is not None else ""
            metavar = spec.flag.lstrip("-").upper().replace("-", "_")
            cmd.add_argument(spec.flag, dest=name, type=spec.kind, default=None, metavar=metavar, help=text + default)
    cmd.add_argument(
        "--fit-init", choices=FIT_INITIALISERS, default=None,
        help="short for --option initialiser=... with mediapipe-fit",
    )  # fmt: skip


def estimator_options_text() -> str:
    """Each estimator's settings for ``--option NAME=VALUE``, from the catalog (a help epilog)."""
    from backend.estimators.catalog import CATALOG

    lines = ["estimator options (--option NAME=VALUE):"]
    for info in CATALOG:
        for option in info.options if info.implementation else ():
            allowed = (" | ".join(option.choices) if option.choices else
                       f"{option.minimum:g}..{option.maximum:g}" if option.minimum is not None else
                       "true | false" if isinstance(option.default, bool) else "")
            lines.append(f"  {info.name}: {option.name}={allowed} (default {option.default})")
            lines.extend(textwrap.wrap(option.description, 100, initial_indent=" " * 6, subsequent_indent=" " * 6))
    return "\n".join(lines)


def checked_option_values(args: argparse.Namespace) -> dict[str, Any]:
    """The options typed, through the schema the service uses (``backend.options.check_options``): the
    ``ReconstructOptions`` fields that were set, estimator settings included."""
    from backend.options import FIELDS, check_options, parse_option_assignments

    raw = {name: getattr(args, name) for name in FIELDS}
    estimator_options = parse_option_assignments(args.estimator or DEFAULT_ESTIMATOR, args.estimator_options or [])
    if args.fit_init is not None:
        estimator_options["initialiser"] = args.fit_init
    raw["estimator_options"] = estimator_options or None
    return check_options(raw, cli=True)


__all__ = ["FIT_INITIALISERS", "add_reconstruct_options", "checked_option_values", "estimator_options_text"]
