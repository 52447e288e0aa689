"""Atomic outputs and safe names.

A writer never opens a final output path: it asks the sink for a temporary
path, and the core renames every temporary file into place only when the
whole item has been written (and verified).  Temporary files live in the
output folder's ``.medscrub/tmp`` so a crash leaves nothing half-written in
the output tree, and a rerun clears them.
"""

from __future__ import annotations

import filecmp
import os
import re
import shutil
import uuid
from pathlib import Path, PurePosixPath

from .model import MedscrubError

STATE_DIR = ".medscrub"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_component(name: str, max_length: int = 128) -> str:
    """One path component that cannot escape a folder or hide: no separators,
    no leading dots, only ``A-Za-z0-9._-``."""
    cleaned = _UNSAFE.sub("_", str(name)).lstrip(".")[:max_length]
    return cleaned or "_"


def safe_relative(path: str) -> PurePosixPath:
    """A relative path built from metadata, made safe part by part."""
    parts = [safe_component(p) for p in PurePosixPath(str(path).replace("\\", "/")).parts if p not in ("", "/")]
    if not parts:
        raise MedscrubError("empty output name")
    return PurePosixPath(*parts)


def inside(path: Path, folder: Path) -> bool:
    path, folder = Path(os.path.abspath(path)), Path(os.path.abspath(folder))
    return path == folder or folder in path.parents


class OutputSink:
    """Where one item's writer puts its files."""

    def __init__(self, output_root: Path, relative: PurePosixPath, forbidden: tuple[Path, ...] = ()) -> None:
        self.output_root = Path(os.path.abspath(output_root))
        self.relative = PurePosixPath(relative)
        self.tmp_root = self.output_root / STATE_DIR / "tmp"
        self.forbidden = frozenset(os.path.abspath(p) for p in forbidden)
        self._pending: dict[PurePosixPath, Path] = {}
        self._opaque: dict[Path, list[tuple[int, int]]] = {}
        self._sources: dict[Path, Path] = {}

    def path(self, relative: str | PurePosixPath | None = None, *, source: Path | None = None,
             from_root: bool = False) -> Path:
        """A temporary path for the output ``relative`` (default: the item's own
        name).  ``relative`` is taken relative to the item's output folder when
        it is a bare name, or to the output root with ``from_root`` (the
        members of a grouped item), and sanitised either way.  ``source`` names
        the input file the output comes from, for the verifiers (default: the
        item's first file)."""
        if relative is None:
            rel = self.relative
        else:
            rel = safe_relative(str(relative))
            if len(rel.parts) == 1 and relative != self.relative and not from_root:
                rel = self.relative.parent / rel
        # ``rel`` is relative with no ".." (sanitised, or an input's path
        # below its root), so the output stays inside unless it names the
        # state folder.
        if rel.is_absolute() or ".." in rel.parts or rel.parts[0] == STATE_DIR:
            raise MedscrubError(f"output name {rel} leaves the output folder")
        if os.path.join(self.output_root, rel) in self.forbidden:
            raise MedscrubError(f"output {rel} would overwrite an input")
        if rel in self._pending:
            return self._pending[rel]
        if not os.path.isdir(self.tmp_root):
            self.tmp_root.mkdir(parents=True, exist_ok=True)
        tmp = self.tmp_root / f"{uuid.uuid4().hex}.part"
        self._pending[rel] = tmp
        if source is not None:
            self._sources[tmp] = Path(source)
        return tmp

    def source(self, tmp: Path) -> Path | None:
        """The input file an output (its temporary path) was made from, when
        the writer said so."""
        return self._sources.get(Path(tmp))

    def opaque(self, path: Path, ranges: list[tuple[int, int]]) -> None:
        """Declare byte ranges of a written file (from :meth:`path`) as sample
        data copied from the input (pixels, k-space, tiles): the in-run leak
        check does not search them for text.  Never declare a region that
        holds or held text, a label or a macro."""
        self._opaque.setdefault(Path(path), []).extend((int(a), int(b)) for a, b in ranges)

    def opaque_ranges(self, tmp: Path) -> list[tuple[int, int]]:
        return self._opaque.get(Path(tmp), [])

    @property
    def outputs(self) -> list[str]:
        return [str(rel) for rel in self._pending]

    def finals(self) -> list[tuple[Path, Path]]:
        return [(tmp, self.output_root / rel) for rel, tmp in self._pending.items()]

    def sizes(self) -> list[int]:
        return [tmp.stat().st_size for tmp, _ in self.finals()]

    def commit(self) -> list[str]:
        """Move every written file into place; each appears whole.

        An output name that exists already is only accepted when its content
        is the same (a rerun of the same item: outputs are deterministic);
        otherwise two inputs were given one output name, and this one fails.
        """
        for tmp, final in self.finals():
            if not tmp.exists():
                raise MedscrubError(f"the writer did not write {final.relative_to(self.output_root)}")
            if final.exists() and not filecmp.cmp(tmp, final, shallow=False):
                raise MedscrubError(
                    f"output {final.relative_to(self.output_root)} exists already with other content "
                    "(two inputs given one output name?)"
                )
        # No fsync per file: a killed process cannot leave a partial file (the
        # link comes after the last write), and what a power loss can leave (an
        # empty or short file under its final name) the resume check catches
        # by the sizes the manifest records.
        for tmp, final in self.finals():
            try:
                try:
                    os.link(tmp, final)  # fails rather than replace what another item wrote meanwhile
                except FileNotFoundError:  # the folder is new (a stat per file would cost more)
                    final.parent.mkdir(parents=True, exist_ok=True)
                    os.link(tmp, final)
                tmp.unlink()
            except FileExistsError:
                if not filecmp.cmp(tmp, final, shallow=False):
                    raise MedscrubError(
                        f"output {final.relative_to(self.output_root)} was written by another item meanwhile"
                    ) from None
                tmp.unlink()
            except OSError:  # a file system without hard links
                os.replace(tmp, final)
        return self.outputs

    def discard(self) -> None:
        for tmp, _ in self.finals():
            try:
                tmp.unlink()
            except FileNotFoundError:
                pass
        self._pending.clear()


def clear_temporaries(output_root: Path) -> None:
    """Remove what a killed run left in the temporary folder."""
    shutil.rmtree(Path(output_root) / STATE_DIR / "tmp", ignore_errors=True)
