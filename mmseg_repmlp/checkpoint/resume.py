"""Which checkpoint of a work dir ``--resume`` continues from."""
import os
import re
import zipfile
from typing import Optional


def is_readable_checkpoint(path: str) -> bool:
    """Whether ``path`` is a complete checkpoint (its zip index reads)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (OSError, zipfile.BadZipFile):
        return False


def find_resumable_checkpoint(work_dir: str) -> Optional[str]:
    """The newest complete checkpoint of a work dir, for ``--resume``.

    MMEngine's ``last_checkpoint`` names the last checkpoint it finished;
    when that file is missing or unreadable, the complete ``iter_*.pth`` /
    ``epoch_*.pth`` with the highest number is taken.
    """
    last = os.path.join(work_dir, 'last_checkpoint')
    if os.path.isfile(last):
        with open(last) as f:
            named = f.read().strip()
        if named and is_readable_checkpoint(named):
            return named
    numbered = []
    for name in os.listdir(work_dir) if os.path.isdir(work_dir) else []:
        match = re.fullmatch(r'(iter|epoch)_(\d+)\.pth', name)
        if match:
            numbered.append((int(match.group(2)), name))
    for _, name in sorted(numbered, reverse=True):
        path = os.path.join(work_dir, name)
        if is_readable_checkpoint(path):
            return path
    return None
