"""The ``[ocr]`` recipe section."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .detect import Strategy
from .engines import DetectorSettings


class OcrOptions(BaseModel):
    """Options of the ``erase-text`` cleaner."""

    model_config = ConfigDict(extra="forbid")

    engine: Literal["rapidocr", "tesseract"] = Field(
        "rapidocr", description="text detector: PP-OCR through onnxruntime, or tesseract-ocr"
    )
    model: Path | None = Field(None, description="a PP-OCR detection .onnx file (default: the one rapidocr ships)")
    center_mask: float = Field(
        0.5, ge=0.0, lt=1.0, description="share of width and height looked at apart from the borders; 0: no mask"
    )
    center_scale: float = Field(1.0, gt=0.0, le=2.0, description="scale of the pass over the centre")
    scales: list[float] = Field(
        default_factory=lambda: [0.4], description="extra whole-frame passes at these scales, for large characters"
    )
    dilation: int = Field(2, ge=0, le=64, description="pixels added round every box")
    fill: Literal["black", "background"] = Field("black", description="paint boxes black or with the local background")
    threshold: float = Field(0.3, gt=0.0, lt=1.0, description="rapidocr: text probability of a pixel")
    box_threshold: float = Field(0.5, gt=0.0, lt=1.0, description="rapidocr: mean probability to keep a box")
    min_confidence: float = Field(10.0, ge=0.0, le=100.0, description="tesseract: word confidence to keep a box")
    threads: int = Field(0, ge=0, description="onnxruntime threads per worker; 0: the worker's share of the "
                         "machine's cores (all of them with one worker, one each with as many workers as cores)")
    region_rules: list[Path] = Field(default_factory=list, description="site region-rule files (TOML)")
    packaged_rules: bool = Field(True, description="apply the region rules shipped with medscrub-ocr")
    ocr: Literal["always", "unless-rule"] = Field(
        "always", description="run the detector on every image, or only where no region rule matches"
    )
    only_flagged: bool = Field(
        False, description="only images that say or may show burned-in text (BurnedInAnnotation YES, or no NO "
        "and a text-prone modality or SOP class); off by default because the flag cannot be trusted"
    )
    frame_tolerance: int = Field(8, ge=0, le=255, description="cine: a pixel differs from the first frame by more")
    previews: int = Field(1, ge=0, le=16, description="before/after pictures per image (frames with most boxes)")
    verify: Literal["off", "flagged", "all"] = Field(
        "flagged", description="medscrub verify and [run] deep_verify: read the text in the pixels of outputs whose "
        "input may show text (DICOM flagged as in only_flagged, and plain images), of every output with pixels, "
        "or of none; medscrub verify --ocr overrides it"
    )
    verify_any_text: bool = Field(
        False, description="report any text read in the pixels, not only the original's identifying values"
    )

    @field_validator("scales")
    @classmethod
    def _scales(cls, v: list[float]) -> list[float]:
        if any(not 0.1 <= s <= 2.0 for s in v):
            raise ValueError("scales must lie between 0.1 and 2")
        return v

    def strategy(self) -> Strategy:
        return Strategy(self.center_mask, self.center_scale, tuple(self.scales), self.dilation)

    def settings(self) -> DetectorSettings:
        return DetectorSettings(self.threshold, self.box_threshold, threads=self.threads)
