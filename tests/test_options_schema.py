"""A reconstruction's options are declared once, in ``backend.options.FIELDS``: the command line's arguments are
generated from it and ``ReconstructOptions`` takes its defaults from it, so neither can drift from the schema."""

from __future__ import annotations

import dataclasses

from backend.app import cli
from backend.options import FIELDS, check_options, default
from backend.pipeline import ReconstructOptions


def test_reconstruct_options_hold_every_schema_field_with_its_default() -> None:
    fields = {f.name: f for f in dataclasses.fields(ReconstructOptions)}
    made = ReconstructOptions()
    for name in FIELDS:
        assert name in fields, f"ReconstructOptions lacks the schema's option {name!r}"
        assert getattr(made, name) == default(name)
    assert made.estimator_options is not ReconstructOptions().estimator_options  # not one shared dict


def test_the_command_line_offers_every_schema_option_and_leaves_defaults_to_the_schema() -> None:
    parser = cli._parser(["reconstruct"])
    args = parser.parse_args(["reconstruct", "in.jpg", "-o", "out.npz"])
    assert all(getattr(args, name) is None for name in FIELDS)  # nothing typed: the schema's defaults apply
    args = parser.parse_args(["reconstruct", "in.jpg", "-o", "out.npz", "--smoothing", "0.2", "--no-coherence",
                              "--keep-partial", "--start", "3", "-O", "depth_order=false"])
    assert (args.smoothing, args.coherence, args.keep_partial, args.frame_start) == (0.2, False, True, 3)
    assert args.estimator_options == ["depth_order=false"]
    help_text = parser._subparsers._group_actions[0].choices["reconstruct"].format_help()
    assert all(spec.flag in help_text for spec in FIELDS.values())
    assert check_options({"smoothing": default("smoothing")}) == {"smoothing": 0.5}
