"""Hostile or damaged inputs: pickles that run code, escaping archive members, truncated files."""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import tarfile

import numpy as np
import pytest
import synthetic

from cifarlab.data import load_dataset
from cifarlab.data.official import RestrictedUnpickler
from cifarlab.errors import DataError


class _Exploit:
    """Pickles to a call of ``func(*args)`` on load."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


# (what the pickle calls, the global as the error names it: protocol 2 writes Python 2 module names)
_EXPLOITS = {
    "os.system": (lambda marker: _Exploit(os.system, f"touch {marker}"), r"posix\.system"),
    "eval": (lambda marker: _Exploit(eval, f"open({str(marker)!r}, 'w')"), r"__builtin__\.eval"),
    "subprocess.call": (lambda marker: _Exploit(subprocess.call, ["touch", str(marker)]),
                        r"(subprocess|commands)\.call"),
}


@pytest.mark.parametrize("exploit", sorted(_EXPLOITS))
def test_batch_that_would_run_code_is_refused_before_running_it(tmp_path, exploit):
    marker = tmp_path / "pwned"
    make, refused = _EXPLOITS[exploit]
    folder = synthetic.make_official_folder(tmp_path / "evil")
    (folder / "data_batch_1").write_bytes(pickle.dumps({b"data": make(marker), b"labels": [0]}, protocol=2))
    with pytest.raises(DataError, match=f"data_batch_1: refused to load global {refused}"):
        load_dataset(folder)
    assert not marker.exists()


def test_code_hidden_in_an_object_array_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    evil = np.array([_Exploit(os.system, f"touch {marker}")], dtype=object)
    archive_dir = tmp_path / "src"
    folder = synthetic.make_official_folder(archive_dir)
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": evil, b"labels": [0]}, protocol=2))
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    # The member is named as the archive spells it, as an ImageFolder member is.
    refused = r"cifar-10-python\.tar\.gz: cifar-10-batches-py/test_batch: refused to load global posix\.system"
    with pytest.raises(DataError, match=refused):
        load_dataset(archive)
    assert not marker.exists()


def test_codecs_other_than_latin1_are_refused():
    # _codecs.encode is allowed for Python 3's bytes idiom only; zlib and friends stay out.
    payload = b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x04\x00\x00\x00zlib\x86R."
    with pytest.raises(pickle.UnpicklingError, match="refused codec 'zlib'"):
        RestrictedUnpickler(payload, "x").load()


def _tar_with(path, names_and_data, links=()):
    with tarfile.open(path, "w") as tar:
        for name, data in names_and_data.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target, kind in links:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, target
            tar.addfile(info)
    return path


@pytest.mark.parametrize("evil", ["../evil.png", "train/cat/../../../evil.png", "<absolute>"])
@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_escaping_member_names_are_refused_and_nothing_is_written(tmp_path, evil, kind):
    evil = str(tmp_path / "evil.png") if evil == "<absolute>" else evil
    work = tmp_path / "work"
    work.mkdir()
    archive = synthetic.make_imagefolder_archive(work / f"d.{kind}", 1, 1, extra={evil: b"x"})
    before = sorted(p for p in tmp_path.rglob("*"))
    cwd = os.getcwd()
    os.chdir(work)  # an extracting reader would write relative to here
    try:
        with pytest.raises(DataError, match=f"d.{kind}: unsafe member path"):
            load_dataset(archive)
    finally:
        os.chdir(cwd)
    assert not (tmp_path / "evil.png").exists()
    assert sorted(p for p in tmp_path.rglob("*")) == before


def test_link_members_are_skipped_not_followed(tmp_path):
    files = synthetic.imagefolder_files(1, 1)
    links = [("train/cat/link.png", "/etc/passwd", tarfile.SYMTYPE),
             ("train/dog/hard.png", "train/cat/0003.png", tarfile.LNKTYPE)]
    data = load_dataset(_tar_with(tmp_path / "d.tar", files, links))
    assert np.bincount(data.train_labels).tolist() == [1] * 10


@pytest.mark.parametrize("make", ["official", "tar.gz", "tar", "zip"])
def test_truncated_archive_is_named(tmp_path, make):
    if make == "official":
        good = synthetic.make_official_archive(tmp_path / "good.tar.gz")
    else:
        good = synthetic.make_imagefolder_archive(tmp_path / f"good.{make}", 2, 1)
    bad = tmp_path / good.name.replace("good", "bad")
    bad.write_bytes(good.read_bytes()[: good.stat().st_size * 2 // 3])
    with pytest.raises(DataError, match=rf"{bad.name}: truncated or corrupt archive"):
        load_dataset(bad)


def test_garbage_archive_is_named(tmp_path):
    bad = tmp_path / "junk.tar.gz"
    bad.write_bytes(os.urandom(4096))
    with pytest.raises(DataError, match=r"junk\.tar\.gz: (truncated or corrupt archive|cannot read)"):
        load_dataset(bad)
