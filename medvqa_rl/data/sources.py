"""Where a real dataset's files come from: a local directory or a hub dataset id, and images from a
folder or a zip archive inside it."""

from __future__ import annotations

import io
import zipfile
from collections import Counter
from pathlib import Path, PurePosixPath


def resolve_root(path: str, revision: str | None) -> Path:
    """A local directory as is; otherwise a hub dataset id, downloaded (or found in the HF cache) at revision."""
    local = Path(path).expanduser()
    if local.is_dir():
        return local
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo_id=path, repo_type="dataset", revision=revision))


class ImageFiles:
    """Opens an image by its path relative to the dataset's image folder: first from the folder (or
    the root), then from the archive. Archive members match by their path, by their path below the
    archive's top folder (`images/x.jpg` for `x.jpg`), or by file name where that name is unique."""

    def __init__(self, root: Path, folder: str, archive: str) -> None:
        self.folders = [d for d in (root / folder, root) if d.is_dir()]
        path = root / archive
        self.zip = zipfile.ZipFile(path) if path.is_file() else None
        self.members: dict[str, str] = {}
        if self.zip is not None:
            names = [n for n in self.zip.namelist() if not n.endswith("/")]
            unique = {name for name, n in Counter(PurePosixPath(m).name for m in names).items() if n == 1}
            for member in names:
                parts = PurePosixPath(member).parts
                keys = [member, "/".join(parts[1:])] + ([parts[-1]] if parts[-1] in unique else [])
                for key in keys:
                    self.members.setdefault(key, member)

    def __call__(self, ref: str):
        for folder in self.folders:
            candidate = folder / ref
            if candidate.is_file():
                return open(candidate, "rb")
        member = self.members.get(ref) or self.members.get(PurePosixPath(ref).name)
        if member is None:
            raise FileNotFoundError(ref)
        return io.BytesIO(self.zip.read(member))
