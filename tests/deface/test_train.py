"""Training: the same samples and the same weights however the run is split
or parallelised (a tiny network on a label map made from ch2)."""

from __future__ import annotations

import json

import numpy as np
import torch
from deface_heads import face_box
from safetensors.torch import load_file

from medscrub_deface import labels
from medscrub_deface.model import BRAIN, FACE, HEAD, SETTINGS, WEIGHTS, NetConfig, load
from medscrub_deface.synth import SynthConfig, Synthesiser
from medscrub_deface.train import batches, train

TINY_NET = NetConfig(base=2, levels=2, spacing=12.0, shape=(16, 18, 18))


def _head(ch2) -> labels.Head:
    data, affine, brain = ch2
    inside = data > 30
    tissue = np.where(brain, 5, np.where(inside, 2, 0)).astype(np.uint8)
    target = np.where(brain, BRAIN, np.where(inside, HEAD, 0)).astype(np.uint8)
    face = face_box(data.shape, affine, below=0.0) & inside & ~brain
    target[face] = FACE
    return labels.Head("ch2", tissue, target, affine, data.astype(np.float32), face)


def test_samples_do_not_depend_on_the_number_of_loader_processes(ch2):
    synth = Synthesiser({"ch2": _head(ch2)}, {"ch2": 1.0}, TINY_NET, SynthConfig())
    alone = list(batches(synth, 7, steps=2, batch=2, workers=0))
    shared = list(batches(synth, 7, steps=2, batch=2, workers=2))
    assert len(alone) == len(shared) == 2
    for (image_a, target_a), (image_b, target_b) in zip(alone, shared, strict=True):
        assert image_a.shape == (2, 1, *TINY_NET.shape) and target_a.shape == (2, *TINY_NET.shape)
        assert torch.equal(image_a, image_b) and torch.equal(target_a, target_b)
    assert not torch.equal(alone[0][0][0], alone[0][0][1])  # every sample its own draw
    other_seed = next(batches(synth, 8, steps=1, batch=2, workers=0))
    assert not torch.equal(other_seed[0], alone[0][0])


def test_the_wide_face_is_learnt_only_where_a_stage_asks_for_it(ch2):
    head = _head(ch2)
    data, affine, brain = ch2
    wide = head.target.copy()
    wide[face_box(data.shape, affine, below=20.0) & (data > 30) & ~brain] = FACE  # the face reaching higher
    head.wide_target = wide
    plain = Synthesiser({"ch2": head}, {"ch2": 1.0}, TINY_NET, SynthConfig(crop_fraction=0.0))
    widened = Synthesiser({"ch2": head}, {"ch2": 1.0}, TINY_NET, SynthConfig(crop_fraction=0.0), wide_face=True)
    image_a, target_a = plain.sample(np.random.default_rng(3))
    image_b, target_b = widened.sample(np.random.default_rng(3))
    assert torch.equal(image_a, image_b)  # the same head, painted alike
    assert (target_b == FACE).sum() > (target_a == FACE).sum() > 0


def _config(folder, cache_path) -> None:
    stages = "".join(f"""
[[stage]]
seed = {seed}
steps = 2
batch = 2
learning_rate = 0.01
final_learning_rate = 0.001
face_weight = {weight}
""" for seed, weight in ((11, 1.0), (12, 4.0)))
    (folder / "config.toml").write_text(f"""
data = "unused.toml"
threads = 1
workers = 0
log_every = 1
save_every = 1
{stages}
[heads]
ch2 = 1.0

[net]
base = {TINY_NET.base}
levels = {TINY_NET.levels}
spacing = {TINY_NET.spacing}
shape = {list(TINY_NET.shape)}
top_margin = {TINY_NET.top_margin}

[synth]
crop_fraction = 0.5
""")


def test_a_run_split_into_its_stages_gives_the_same_weights(tmp_path, ch2):
    cache = tmp_path / "heads.npz"
    labels.save_cache({"ch2": _head(ch2)}, cache)  # with a cache, the data list is not read
    _config(tmp_path, cache)
    config = tmp_path / "config.toml"
    lines: list[str] = []
    whole = train(config, tmp_path / "whole", cache, log=lines.append)
    first = train(config, tmp_path / "first", cache, log=lines.append, to_stage=1)
    split = train(config, tmp_path / "split", cache, from_stage=2, init=first, log=lines.append)
    a, b = load_file(str(whole / WEIGHTS)), load_file(str(split / WEIGHTS))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    history = json.loads((split / "history.json").read_text())
    assert [(e["stage"], e["step"]) for e in history][-2:] == [(2, 1), (2, 2)]
    provenance = (split / SETTINGS).read_text()
    assert "stage1 = " in provenance and "stage2 = " in provenance and "2 of 2 steps of 2" in provenance
    net, net_config = load(str(split))
    assert net_config == TINY_NET and not net.training
