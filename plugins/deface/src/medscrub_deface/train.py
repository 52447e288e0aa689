"""Training: ``medscrub deface train --config training/config.toml --out OUT``.

Reproduces the shipped weights from the label maps of
:mod:`medscrub_deface.labels` and the synthesiser of
:mod:`medscrub_deface.synth`.  Sample ``i`` of a stage draws from its own
generator, seeded by the stage's seed and ``i``, so the images are the same
whatever the number of loader processes; a run with the same config, data
and torch build on the same kind of device gives the same weights (CPU
kernels are deterministic here; a GPU's may not be).
"""

from __future__ import annotations

import json
import math
import platform
import time
import tomllib
from dataclasses import fields
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from . import labels
from .model import CLASSES, FACE, SETTINGS, WEIGHTS, NetConfig, UNet3D, device, save
from .synth import SynthConfig, Synthesiser


def read(path: Path) -> dict:
    config = tomllib.loads(path.read_text())
    config["_folder"] = str(path.parent)
    return config


def net_config(raw: dict) -> NetConfig:
    return NetConfig(base=int(raw["base"]), levels=int(raw["levels"]), spacing=float(raw["spacing"]),
                     shape=tuple(int(n) for n in raw["shape"]), top_margin=float(raw["top_margin"]))


def synth_config(raw: dict) -> SynthConfig:
    names = {f.name for f in fields(SynthConfig)}
    unknown = set(raw) - names
    if unknown:
        raise ValueError(f"unknown [synth] settings: {', '.join(sorted(unknown))}")
    return SynthConfig(**raw)


def loss_fn(logits: torch.Tensor, target: torch.Tensor, face_weight: float = 1.0) -> torch.Tensor:
    """Cross-entropy (the face class weighted by ``face_weight``) plus soft
    Dice over the foreground classes."""
    if face_weight != 1.0:
        weight = torch.ones(len(CLASSES), device=logits.device)
        weight[FACE] = face_weight
        ce = F.cross_entropy(logits, target, weight=weight)
    else:
        ce = F.cross_entropy(logits, target)
    probs = logits.softmax(1)
    onehot = F.one_hot(target, len(CLASSES)).permute(0, 4, 1, 2, 3).float()
    dims = (0, 2, 3, 4)
    inter = (probs * onehot).sum(dims)
    dice = (2 * inter + 1) / (probs.sum(dims) + onehot.sum(dims) + 1)
    return ce + (1 - dice[1:]).mean()


class Samples(torch.utils.data.Dataset):
    """The ``count`` synthetic samples of one stage: sample ``i`` comes from
    a generator seeded by ``(seed, i)``."""

    def __init__(self, synth: Synthesiser, seed: int, count: int) -> None:
        self.synth, self.seed, self.count = synth, seed, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.synth.sample(np.random.default_rng([self.seed, i]))


def _one_thread(_worker: int) -> None:
    # each loader process paints one sample at a time: many processes, one thread each
    torch.set_num_threads(1)


def batches(synth: Synthesiser, seed: int, steps: int, batch: int, workers: int):
    """The stage's batches in order: (images (B, 1, X, Y, Z), targets (B, X, Y, Z)),
    painted by ``workers`` processes (0: in this one)."""
    loader = torch.utils.data.DataLoader(
        Samples(synth, seed, steps * batch), batch_size=batch, shuffle=False, num_workers=workers,
        worker_init_fn=_one_thread if workers else None, prefetch_factor=4 if workers else None)
    return iter(loader)


def _device_name(dev: torch.device) -> str:
    return torch.cuda.get_device_name(dev) if dev.type == "cuda" else str(dev)


def stages(config: dict) -> list[dict]:
    """The config's stages: each has its own seed, step count, batch size,
    learning rates (cosine from the first to the final), face weight and
    face labels (``wide_face``: both face masks), and a fresh Adam;
    a stage starts from the weights the one before it left."""
    out = []
    for n, raw in enumerate(config["stage"], 1):
        out.append({"seed": int(raw["seed"]), "steps": int(raw["steps"]), "lr0": float(raw["learning_rate"]),
                    "lr1": float(raw["final_learning_rate"]), "face_weight": float(raw.get("face_weight", 1.0)),
                    "batch": int(raw.get("batch", 1)), "wide_face": bool(raw.get("wide_face", False)),
                    "number": n})
    return out


def train(config_path: Path, out: Path, cache: Path | None = None, from_stage: int = 1,
          init: Path | None = None, log=print, workers: int | None = None, to_stage: int | None = None) -> Path:
    """Run the config's stages ``from_stage`` to ``to_stage`` (default: the
    last), starting from the weights in ``init`` when ``from_stage`` is above
    1, and save the weights in ``out``.
    ``workers`` (default: the config's) processes paint the samples; the
    weights do not depend on it."""
    from safetensors.torch import load_file

    config = read(config_path)
    torch.set_num_threads(int(config.get("threads", 2)))
    net_cfg = net_config(config["net"])
    data_list = Path(config["_folder"]) / config["data"]
    all_stages = stages(config)
    t0 = time.perf_counter()
    heads = labels.heads(data_list, cache, int(config.get("label_seed", all_stages[0]["seed"])))
    log(f"label maps: {', '.join(heads)} in {time.perf_counter() - t0:.0f} s")
    head_weights = {k: float(v) for k, v in config["heads"].items()}
    synths = {wide: Synthesiser(heads, head_weights, net_cfg, synth_config(config["synth"]), wide_face=wide)
              for wide in {stage["wide_face"] for stage in all_stages[from_stage - 1:to_stage]}}
    dev = device()
    torch.manual_seed(all_stages[0]["seed"])
    net = UNet3D(net_cfg.base, net_cfg.levels).to(dev)
    if from_stage > 1:
        if init is None:
            raise ValueError("--from-stage above 1 needs --init with the previous stage's weights")
        net.load_state_dict(load_file(str(init / WEIGHTS)))
    out.mkdir(parents=True, exist_ok=True)
    provenance = {"config": config_path.name, "torch": torch.__version__, "device": _device_name(dev),
                  "python": platform.python_version()}
    if from_stage > 1 and init is not None and (init / SETTINGS).exists():
        earlier = tomllib.loads((init / SETTINGS).read_text()).get("provenance", {})
        provenance.update({k: v for k, v in earlier.items() if k.startswith("stage")})
    history_path = out / "history.json"
    history = []
    if from_stage > 1:  # the log goes on from the earlier stages'
        earlier_log = history_path if history_path.exists() else init / "history.json"
        history = json.loads(earlier_log.read_text()) if earlier_log.exists() else []
    log_every, save_every = int(config.get("log_every", 20)), int(config.get("save_every", 200))
    workers = int(config.get("workers", 0)) if workers is None else workers
    for stage in all_stages[from_stage - 1:to_stage]:
        opt = torch.optim.Adam(net.parameters(), lr=stage["lr0"])
        total, lr0, lr1 = stage["steps"], stage["lr0"], stage["lr1"]
        start = time.perf_counter()
        running = 0.0
        stream = batches(synths[stage["wide_face"]], stage["seed"], total, stage["batch"], workers)
        for step in range(1, total + 1):
            lr = lr1 + 0.5 * (lr0 - lr1) * (1 + math.cos(math.pi * (step - 1) / total))
            for group in opt.param_groups:
                group["lr"] = lr
            image, target = next(stream)
            logits = net(image.to(dev, non_blocking=True))
            loss = loss_fn(logits, target.to(dev, non_blocking=True), stage["face_weight"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            running += float(loss.detach())
            if step % log_every == 0:
                entry = {"stage": stage["number"], "step": step, "loss": round(running / log_every, 4),
                         "lr": round(lr, 6), "seconds": round(time.perf_counter() - start, 1)}
                history.append(entry)
                log(json.dumps(entry))
                running = 0.0
            if step % save_every == 0 or step == total:
                provenance[f"stage{stage['number']}"] = (
                    f"seed {stage['seed']}, {step} of {total} steps of {stage['batch']}, "
                    f"{time.perf_counter() - start:.0f} s")
                save(net, out, net_cfg, provenance)
                history_path.write_text(json.dumps(history, indent=0))
    return out
