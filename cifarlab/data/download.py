"""Downloading the official CIFAR-10 archive, with a progress bar and an MD5 check."""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from cifarlab.errors import DataError
from cifarlab.fileio import atomic_path

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
FILENAME = "cifar-10-python.tar.gz"


def download(dest: Path, url: str | None = None, md5: str | None = None, progress: bool = True) -> Path:
    """Fetch ``url`` (default: the official address, or ``$CIFARLAB_CIFAR10_URL``) to ``dest``.

    The file appears at ``dest`` only once complete and its MD5 matches.
    """
    url = url or os.environ.get("CIFARLAB_CIFAR10_URL") or URL
    md5 = md5 or MD5
    digest = hashlib.md5()
    try:
        with atomic_path(dest) as tmp:
            with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as out:
                total = int(response.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {dest.name}",
                          disable=not progress, leave=False) as bar:
                    while chunk := response.read(1 << 20):
                        out.write(chunk)
                        digest.update(chunk)
                        bar.update(len(chunk))
            if digest.hexdigest() != md5:
                raise DataError(f"{url}: checksum mismatch, expected md5 {md5}, got {digest.hexdigest()}; "
                                "the download was discarded")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DataError(f"cannot download CIFAR-10 from {url}: {reason}; pass --data PATH to use a local copy "
                        "(the official archive or an ImageFolder tree/archive)") from None
    return dest
