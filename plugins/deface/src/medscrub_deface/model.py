"""The network: a small 3D U-Net that labels a head at a fixed working grid.

Four classes per voxel of a RAS-aligned box (see :mod:`medscrub_deface.grid`):
background, head (skin, fat, muscle, bone: not face, not brain), face and
brain.  The network is defined here, in full, and its weights ship inside
the package as ``data/deface-unet.safetensors`` with the settings in
``data/deface-unet.toml``; nothing is downloaded.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

CLASSES = ("background", "head", "face", "brain")
BACKGROUND, HEAD, FACE, BRAIN = range(4)

WEIGHTS = "deface-unet.safetensors"
SETTINGS = "deface-unet.toml"


@dataclass(frozen=True)
class NetConfig:
    """The shape of the network and of the grid it was trained on."""

    base: int = 8  # channels at the finest level, doubled per level
    levels: int = 4  # resolutions, the finest included
    spacing: float = 3.0  # mm of the working grid
    shape: tuple[int, int, int] = (80, 88, 88)  # voxels of the working grid (R, A, S)
    top_margin: float = 20.0  # mm between the top of the head and the top of the box


class Block(nn.Module):
    """Two 3x3x3 convolutions, each with instance norm and leaky ReLU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv3d(cin, cout, 3, padding=1, bias=False), nn.InstanceNorm3d(cout, affine=True), nn.LeakyReLU(0.01, True),
            nn.Conv3d(cout, cout, 3, padding=1, bias=False), nn.InstanceNorm3d(cout, affine=True), nn.LeakyReLU(0.01, True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class UNet3D(nn.Module):
    """Encoder of strided convolutions, decoder of transposed ones, skip
    connections by concatenation; logits for :data:`CLASSES`."""

    def __init__(self, base: int = 8, levels: int = 4, in_channels: int = 1, classes: int = len(CLASSES)) -> None:
        super().__init__()
        widths = [base * 2**i for i in range(levels)]
        self.enc = nn.ModuleList([Block(in_channels, widths[0])])
        self.down = nn.ModuleList()
        for i in range(1, levels):
            self.down.append(nn.Conv3d(widths[i - 1], widths[i - 1], 2, stride=2))
            self.enc.append(Block(widths[i - 1], widths[i]))
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for i in range(levels - 1, 0, -1):
            self.up.append(nn.ConvTranspose3d(widths[i], widths[i - 1], 2, stride=2))
            self.dec.append(Block(2 * widths[i - 1], widths[i - 1]))
        self.head = nn.Conv3d(widths[0], classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.enc):
            if i:
                x = self.down[i - 1](x)
            x = block(x)
            skips.append(x)
        x = skips.pop()
        for up, dec in zip(self.up, self.dec, strict=True):
            x = up(x)
            x = dec(torch.cat([x, skips.pop()], 1))
        return self.head(x)


def data_dir() -> Path:
    return Path(str(files("medscrub_deface") / "data"))


def read_config(path: Path) -> NetConfig:
    raw = tomllib.loads(path.read_text())["net"]
    return NetConfig(base=int(raw["base"]), levels=int(raw["levels"]), spacing=float(raw["spacing"]),
                     shape=tuple(int(n) for n in raw["shape"]), top_margin=float(raw["top_margin"]))


def write_config(path: Path, config: NetConfig, provenance: dict[str, str]) -> None:
    lines = ["# The network and working grid the shipped weights were trained with.", "[net]",
             f"base = {config.base}", f"levels = {config.levels}", f"spacing = {config.spacing}",
             f"shape = [{', '.join(str(n) for n in config.shape)}]", f"top_margin = {config.top_margin}", "",
             "[provenance]"]
    lines += [f"{key} = {value!r}".replace("'", '"') for key, value in provenance.items()]
    path.write_text("\n".join(lines) + "\n")


def device() -> torch.device:
    """A GPU when one is present, else the CPU."""
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


@lru_cache(maxsize=4)
def load(folder: str | None = None) -> tuple[UNet3D, NetConfig]:
    """The trained network (in eval mode, on :func:`device`) and its config,
    from the package data or from ``folder``."""
    from safetensors.torch import load_file

    where = Path(folder) if folder else data_dir()
    config = read_config(where / SETTINGS)
    net = UNet3D(config.base, config.levels)
    net.load_state_dict(load_file(str(where / WEIGHTS)))
    net.eval()
    return net.to(device()), config


def save(net: UNet3D, folder: Path, config: NetConfig, provenance: dict[str, str]) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(folder / WEIGHTS))
    write_config(folder / SETTINGS, config, provenance)


def logits_to_probs(logits: torch.Tensor) -> torch.Tensor:
    return F.softmax(logits, dim=1)
