"""Train the LASOR regressor on synthetic data generated on the fly.

    python -m backend.lasor.train --out runs/lasor [--steps N] [--resume CKPT] [--batch 32] [--lr 1e-3]
        [--device cpu|cuda] [--seed 0] [--export backend/lasor/weights/lasor_open_body_cpu.pt]
        [--widths 32,64,128,256] [--blocks 1] [--hidden 512] [--input-size 64] [--render-size 32]
        [--silhouette-loss chamfer|render]

Writes ``OUT/last.pt`` (model, loss weights, optimiser, step, config) every ``--save-every`` steps and at the
end; ``--resume`` continues from such a checkpoint (batches are seeded by (seed, step), so a resumed run sees
the same data as an uninterrupted one). ``--export`` writes the model's plain state_dict (float16) plus its
config as a small file that ``load_regressor`` reads with ``weights_only=True``. The model options (``--widths``
... ``--render-size``) apply to a new run; a resumed run keeps its checkpoint's.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from backend.body import load_body_model
from backend.lasor.body import LightBody
from backend.lasor.data import DataConfig, Generator
from backend.lasor.losses import LasorLoss
from backend.lasor.model import LasorRegressor, ModelConfig
from backend.lasor.poses import euler_to_matrix, sample_body_poses

DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights" / "lasor_open_body_cpu.pt"


def mean_rotmats(num: int = 20000, seed: int = 12345) -> torch.Tensor:
    """The IEF start: the pose sampler's mean body pose (chordal mean), upright and facing the camera."""
    poses = sample_body_poses(np.random.default_rng(seed), num)
    mean = poses.rotmats().mean(0)
    u, _, vt = torch.linalg.svd(mean)
    d = torch.sign(torch.linalg.det(u @ vt))
    fix = torch.ones(24, 3)
    fix[:, 2] = d
    rot = u @ torch.diag_embed(fix) @ vt
    # facing the camera, y down, looking down a little (the mean camera pitch)
    rot[0] = euler_to_matrix(torch.tensor([0.35, 0.0, 0.0])) @ torch.diag(torch.tensor([1.0, -1.0, -1.0]))
    return rot


def build(body_name: str = "open-body", device: str = "cpu", model_config: ModelConfig | None = None):
    body = LightBody(load_body_model(body_name)).to(device)
    model = LasorRegressor(model_config or ModelConfig(num_betas=body.num_betas), mean_rotmats()).to(device)
    return body, model


# Config entries no tensor shape reveals, stored as int64 scalars under this prefix in the shipped file.
STORED_CONFIG = ("iterations", "input_size", "render_size")
CONFIG_PREFIX = "_config."


def save_weights(model: LasorRegressor, path: Path) -> None:
    """The shipped file: the model's plain state_dict, floating tensors in float16 (half the size; the loader
    restores float32), loadable with ``torch.load(..., weights_only=True)``. The architecture is read back from
    the tensor shapes and the ``STORED_CONFIG`` scalars (``config_from_state_dict``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: (v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu()).clone()
             for k, v in model.state_dict().items()}
    for name in STORED_CONFIG:
        state[CONFIG_PREFIX + name] = torch.tensor(int(getattr(model.config, name)))
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def config_from_state_dict(state: dict) -> ModelConfig:
    """The architecture of a saved regressor: widths, blocks, hidden size and betas from its tensor shapes, the
    ``STORED_CONFIG`` entries from their scalars (defaults for files written before they were stored)."""
    stages = sorted({int(k.split(".")[1]) for k in state if k.startswith("layers.")})
    widths = tuple(int(state[f"layers.{i}.0.conv1.weight"].shape[0]) for i in stages)
    blocks = len({k.split(".")[2] for k in state if k.startswith("layers.0.") and k.endswith("conv1.weight")})
    stored = {name: int(state[CONFIG_PREFIX + name]) for name in STORED_CONFIG if CONFIG_PREFIX + name in state}
    return ModelConfig(widths=widths, blocks=blocks, hidden=int(state["fc1.weight"].shape[0]),
                       num_betas=int(state["dec_shape.weight"].shape[0]), **stored)


def load_regressor(path: Path | str = DEFAULT_WEIGHTS, device: str = "cpu") -> LasorRegressor:
    """The regressor in a shipped-format file (``save_weights``). Raises ``OSError`` for a missing file and
    ``ValueError``, saying why, for one that is unreadable, pickles code, or is not a LASOR state_dict."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except OSError:
        raise
    except Exception as exc:  # truncated zip, plain garbage, or a pickle weights_only refuses
        raise ValueError(f"cannot read LASOR weights {path}: {type(exc).__name__}: {str(exc)[:200]}") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} is not a LASOR weights file (expected a dict of tensors)")
    try:
        model = LasorRegressor(config_from_state_dict(state))
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()
                               if not k.startswith(CONFIG_PREFIX)})
    except (KeyError, IndexError, RuntimeError) as exc:
        raise ValueError(f"{path} is not a LASOR regressor state_dict: {type(exc).__name__}: "
                         f"{str(exc)[:200]}") from exc
    return model.to(device).eval()


def save_checkpoint(path: Path, model, loss, optimizer, step: int, args: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "loss": loss.state_dict(), "optimizer": optimizer.state_dict(),
                "step": step, "model_config": model.config.to_dict(), "args": args,
                "torch_rng": torch.get_rng_state()}, tmp)
    tmp.replace(path)


def lr_at(step: int, total: int, base: float, warmup: int = 100) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup)))))


def train(out: Path, steps: int, resume: Path | None = None, batch_size: int = 32, lr: float = 1e-3,
          device: str = "cpu", seed: int = 0, save_every: int = 200, export: Path | None = None,
          progress: bool = True, data_config: DataConfig | None = None,
          model_config: ModelConfig | None = None, silhouette_loss: str = "chamfer") -> dict:
    """Train (or resume) a run; ``model_config`` applies to a new run only (a resumed one keeps its own). The
    data's input and silhouette sizes follow the model config."""
    from tqdm import tqdm

    out.mkdir(parents=True, exist_ok=True)
    args = {"steps": steps, "batch": batch_size, "lr": lr, "seed": seed, "device": device,
            "silhouette_loss": silhouette_loss}
    start = 0
    ckpt = None
    if resume is not None:
        ckpt = torch.load(resume, map_location="cpu", weights_only=True)
        model_config = ModelConfig.from_dict(ckpt["model_config"])
    torch.manual_seed(seed)  # initial weights; a resumed run restores the RNG state below
    body, model = build(device=device, model_config=model_config)
    loss_fn = LasorLoss(body, silhouette=silhouette_loss).to(device)
    optimizer = torch.optim.Adam(list(model.parameters()) + list(loss_fn.parameters()), lr=lr)
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        loss_fn.load_state_dict(ckpt["loss"])
        optimizer.load_state_dict(ckpt["optimizer"])
        start = int(ckpt["step"])
        if "torch_rng" in ckpt:  # dropout and silhouette sampling continue as if never stopped
            torch.set_rng_state(ckpt["torch_rng"])
    data_config = dataclasses.replace(data_config or DataConfig(), size=model.config.input_size,
                                      render_size=model.config.render_size)
    gen = Generator(body, data_config)
    log = (out / "log.jsonl").open("a")
    bar = tqdm(range(start, steps), initial=start, total=steps, disable=not progress, desc="lasor")
    terms: dict = {}
    for step in bar:
        model.train()
        batch = gen.batch(np.random.default_rng([seed, step]), batch_size)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, steps, lr)
        total, terms = loss_fn(model(batch.inputs), batch)
        optimizer.zero_grad()
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        bar.set_postfix(loss=f"{total.item():.3f}", j3d=f"{terms['j3d']:.4f}")
        if (step + 1) % 20 == 0:
            log.write(json.dumps({"step": step + 1, "loss": total.item(), **terms, "time": time.time()}) + "\n")
            log.flush()
        if (step + 1) % save_every == 0 or step + 1 == steps:
            save_checkpoint(out / "last.pt", model, loss_fn, optimizer, step + 1, args)
            if export is not None:
                save_weights(model, export)
    log.close()
    if start >= steps:
        save_checkpoint(out / "last.pt", model, loss_fn, optimizer, steps, args)
    if export is not None:
        save_weights(model, export)
    return {"step": steps, **terms}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m backend.lasor.train", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, log.jsonl)")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--resume", type=Path, default=None)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-every", type=int, default=200)
    p.add_argument("--export", type=Path, default=None, help="also write the shipped weights file here")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--silhouette-loss", choices=("chamfer", "render"), default="chamfer",
                   help="chamfer to the true silhouette's pixels, or the paper's squared difference of rendered "
                        "(splatted) silhouettes")
    model = p.add_argument_group("model (a new run; a resumed run keeps its checkpoint's)")
    default = ModelConfig()
    model.add_argument("--widths", type=_widths, default=default.widths,
                       help="ResNet stage widths, e.g. 64,128,256,512")
    model.add_argument("--blocks", type=int, default=default.blocks, help="basic blocks per stage")
    model.add_argument("--hidden", type=int, default=default.hidden, help="IEF hidden size")
    model.add_argument("--input-size", type=int, default=default.input_size, help="network input, pixels")
    model.add_argument("--render-size", type=int, default=default.render_size,
                       help="silhouette rasterization size, pixels (resized to the input)")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    config = ModelConfig(widths=a.widths, blocks=a.blocks, hidden=a.hidden, input_size=a.input_size,
                         render_size=a.render_size)
    result = train(a.out, a.steps, a.resume, a.batch, a.lr, a.device, a.seed, a.save_every, a.export,
                   model_config=config, silhouette_loss=a.silhouette_loss)
    print(json.dumps(result))


def _widths(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(w) for w in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"widths must be comma-separated integers, got {text!r}") from None
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"widths must be positive, got {text!r}")
    return widths


if __name__ == "__main__":
    main()
