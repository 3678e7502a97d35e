"""Downloading the official CIFAR-10 archive, with a progress bar and an MD5 check."""

from __future__ import annotations

import hashlib
import http.client
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
URL_ENV = "CIFARLAB_CIFAR10_URL"
MD5_ENV = "CIFARLAB_CIFAR10_MD5"  # a mirror's own packaging of CIFAR-10 (and the tests' loopback server)


def download(dest: Path, url: str | None = None, md5: str | None = None, progress: bool = True) -> Path:
    """Fetch ``url`` (default ``$CIFARLAB_CIFAR10_URL``, else the official address) to ``dest``.

    ``dest`` appears only once complete and matching ``md5`` (default ``$CIFARLAB_CIFAR10_MD5``,
    else the official archive's); on any failure nothing is left and :class:`DataError` says why.
    """
    url = url or os.environ.get(URL_ENV) or URL
    md5 = (md5 or os.environ.get(MD5_ENV) or MD5).lower()
    digest = hashlib.md5()
    try:
        with atomic_path(dest) as tmp:
            with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as out:
                total = int(response.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, leave=False,
                          desc=f"downloading {dest.name}", disable=not progress) as bar:
                    while chunk := response.read(1 << 20):
                        out.write(chunk)
                        digest.update(chunk)
                        bar.update(len(chunk))
            if digest.hexdigest() != md5:
                raise DataError(f"{url}: checksum mismatch, expected md5 {md5}, got {digest.hexdigest()}; "
                                "the download was deleted")
    except (http.client.HTTPException, OSError, ValueError) as exc:  # OSError includes urllib's URLError
        reason = (f"HTTP {exc.code} {exc.reason}" if isinstance(exc, urllib.error.HTTPError)
                  else getattr(exc, "reason", None) or exc)  # URLError wraps the socket error in .reason
        raise DataError(f"cannot download CIFAR-10 from {url}: {reason}; pass --data PATH to use a local copy "
                        "(official archive or ImageFolder tree/archive)") from None
    return dest
