"""The storage root on a real file system: safe paths, streamed hashed uploads, and moves that never lose a file."""

import hashlib
import io
import tracemalloc
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from printlab.domain.statuses import STATUS_FOLDERS
from printlab.services.files.storage import (
    CHUNK,
    TEMP_FOLDER,
    AlreadyExists,
    LinkedPath,
    Storage,
    TooLarge,
    UnsafePath,
    sha256_of,
)

from .conftest import MODELS, SLICED

CUBE = MODELS / "stl_binary_20mm_xyz_cube.stl"
BASE = "JaneDoe_Filament_TrueRed_a1b2c3"
SIDECAR = f"{BASE}.stl.metadata.json"
MB = 1024 * 1024


def tree(storage: Storage) -> dict[str, bytes]:
    """Every file under the root, root-relative, with its bytes."""
    return {
        p.relative_to(storage.root).as_posix(): p.read_bytes()
        for p in sorted(storage.root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def put(storage: Storage, relative: str, data: bytes) -> Path:
    path = storage.root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def job_in(storage: Storage, folder: str, *, sliced: bool = False) -> list[Path]:
    """A job's files as the workflow leaves them: upload, sidecar, optionally a slicer file."""
    files = [
        put(storage, f"{folder}/{BASE}.stl", CUBE.read_bytes()),
        put(storage, f"{folder}/{SIDECAR}", b"{}"),
    ]
    if sliced:
        files.append(put(storage, f"{folder}/{BASE}.gcode", b"; sliced\nG28\n"))
    return files


# -- paths -------------------------------------------------------------------------------------


def test_ensure_folders_creates_every_status_folder_and_the_temp_folder(tmp_path):
    storage = Storage(tmp_path / "new-root")
    storage.ensure_folders()
    storage.ensure_folders()  # idempotent
    assert sorted(p.name for p in storage.root.iterdir()) == sorted((*STATUS_FOLDERS, TEMP_FOLDER))
    storage.check_writable()


@pytest.mark.parametrize(
    "relative", ["Uploaded/x.stl", "Uploaded", "Pending/sub/x.gcode", "./Uploaded/x.stl", "Uploaded//x.stl"]
)
def test_resolve_keeps_ordinary_paths_inside_the_root(storage, relative):
    resolved = storage.resolve(relative)
    assert resolved == storage.root.joinpath(*PurePosixPath(relative).parts)
    assert resolved.is_relative_to(storage.root)


@pytest.mark.parametrize(
    "relative",
    [
        "",
        "/etc/passwd",
        "//etc/passwd",
        "..",
        "../outside.stl",
        "Uploaded/../../outside.stl",
        "Uploaded/..",
        "Uploaded\\..\\..\\outside.stl",
        "Uploaded\\x.stl",
        "C:\\Windows\\system.ini",
        "Uploaded/x\x00.stl",
    ],
)
def test_resolve_refuses_paths_that_could_leave_the_root(storage, relative):
    with pytest.raises(UnsafePath):
        storage.resolve(relative)


def test_resolve_refuses_a_symlink_inside_the_root_that_points_outside(storage, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not the lab's")
    (storage.root / "Uploaded" / "escape").symlink_to(outside)
    (storage.root / "Uploaded" / "secret.txt").symlink_to(outside / "secret.txt")
    (storage.root / "Uploaded" / "dangling").symlink_to(outside / "missing.stl")
    (storage.root / "Shortcut").symlink_to(outside)
    for relative in (
        "Uploaded/escape",
        "Uploaded/escape/secret.txt",
        "Uploaded/secret.txt",
        "Uploaded/dangling",
        "Shortcut/secret.txt",
    ):
        with pytest.raises(UnsafePath, match="leaves the storage root"):
            storage.resolve(relative)


def test_resolve_refuses_a_symlink_even_when_it_stays_inside_the_root(storage):
    # A link planted beside a job's files could hand out another job's file under its name.
    put(storage, "Pending/model.stl", b"solid")
    (storage.root / "Uploaded" / "link.stl").symlink_to(storage.root / "Pending" / "model.stl")
    (storage.root / "Uploaded" / "folder").symlink_to(storage.root / "Pending")
    for relative in ("Uploaded/link.stl", "Uploaded/folder", "Uploaded/folder/model.stl"):
        with pytest.raises(LinkedPath, match="symbolic link"):
            storage.resolve(relative)
    assert storage.folder_files("Uploaded") == []


def test_resolve_refuses_a_symlink_loop_with_unsafe_path(storage):
    (storage.root / "Uploaded" / "loop").symlink_to(storage.root / "Uploaded" / "loop")
    with pytest.raises(UnsafePath):
        storage.resolve("Uploaded/loop")


@given(st.text(max_size=80))
def test_any_text_resolves_inside_the_root_or_is_refused(tmp_path_factory, text):
    storage = Storage(tmp_path_factory.getbasetemp() / "hypothesis-root")
    storage.ensure_folders()
    try:
        resolved = storage.resolve(text)
    except UnsafePath:
        return
    assert resolved.resolve().is_relative_to(storage.root)


# -- receiving uploads -------------------------------------------------------------------------


def test_receive_streams_a_model_and_hashes_it_like_hashlib(storage):
    with open(CUBE, "rb") as handle:
        received = storage.receive(handle, 50 * MB)
    data = CUBE.read_bytes()
    assert received.sha256 == hashlib.sha256(data).hexdigest()
    assert received.size == len(data)
    assert received.path.read_bytes() == data
    assert received.path.parent == storage.root / TEMP_FOLDER
    received.discard()
    assert list((storage.root / TEMP_FOLDER).iterdir()) == []


def test_receive_accepts_exactly_the_limit(storage):
    received = storage.receive(io.BytesIO(b"x" * 1000), 1000)
    assert received.size == 1000
    assert sha256_of(received.path) == hashlib.sha256(b"x" * 1000).hexdigest()


class Generated(io.RawIOBase):
    """A stream of `size` bytes made up as it is read, remembering how much was read."""

    def __init__(self, size: int):
        self.size = size
        self.position = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            n = self.size - self.position
        n = min(n, self.size - self.position)
        block = bytes([self.position // CHUNK % 251]) * n  # a fresh object each read, like a socket
        self.position += n
        return block


def expected_digest(size: int) -> str:
    digest, stream = hashlib.sha256(), Generated(size)
    while block := stream.read(CHUNK):
        digest.update(block)
    return digest.hexdigest()


def test_receive_refuses_too_large_without_reading_it_all_and_leaves_no_temp_file(storage):
    stream = Generated(60 * MB)
    with pytest.raises(TooLarge, match="larger than the 2 MB limit") as caught:
        storage.receive(stream, 2 * MB)
    assert caught.value.limit_bytes == 2 * MB
    assert stream.position <= 2 * MB + CHUNK  # stopped at the limit, not at the end of the upload
    assert list((storage.root / TEMP_FOLDER).iterdir()) == []


def test_receive_memory_does_not_grow_with_the_upload(storage):
    size = 30 * MB
    tracemalloc.start()
    try:
        received = storage.receive(Generated(size), 50 * MB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received.size == size
    assert received.sha256 == expected_digest(size)
    assert peak < 4 * MB, f"peak {peak / MB:.1f} MB while streaming {size / MB:.0f} MB"


# -- placing files -----------------------------------------------------------------------------


def test_place_new_refuses_to_overwrite_a_different_file(storage):
    source = put(storage, ".incoming/upload.part", b"new upload")
    put(storage, "Uploaded/x.stl", b"someone else's upload")
    with pytest.raises(AlreadyExists):
        storage.place_new(source, "Uploaded/x.stl")
    assert (storage.root / "Uploaded/x.stl").read_bytes() == b"someone else's upload"


def test_place_new_refuses_an_unsafe_destination(storage, tmp_path):
    source = put(storage, ".incoming/upload.part", b"data")
    with pytest.raises(UnsafePath):
        storage.place_new(source, "../escaped.stl")
    assert not (tmp_path / "escaped.stl").exists()


def test_write_atomic_replaces_the_whole_file_and_leaves_no_temp_file(storage):
    path = put(storage, f"Uploaded/{SIDECAR}", b'{"old": true}')
    storage.write_atomic(path, b'{"new": true}')
    assert tree(storage) == {f"Uploaded/{SIDECAR}": b'{"new": true}'}


def test_sidecar_round_trip(storage):
    path = put(storage, f"Uploaded/{SIDECAR}", b"")
    storage.write_atomic(path, storage.encode_sidecar({"id": "abc", "status": "UPLOADED"}))
    assert storage.read_sidecar(f"Uploaded/{SIDECAR}") == {
        "id": "abc",
        "status": "UPLOADED",
        "sidecar_version": 1,
    }


# -- a job's files -----------------------------------------------------------------------------


def test_job_files_match_the_base_name_followed_by_punctuation_only(storage):
    mine = [f"{BASE}.stl", f"{BASE}.stl.metadata.json", f"{BASE}.gcode", f"{BASE}_v2.3mf", f"{BASE} (1).stl"]
    others = [
        "JaneDoe_Filament_TrueRed_a1b2c37.stl",  # a longer simple id after a collision
        "JaneDoe_Filament_TrueRed_a1b2c3d.stl",
        "JaneDoe_Filament_TrueRed_a1b2c.stl",
        "XJaneDoe_Filament_TrueRed_a1b2c3.stl",
        BASE,  # the bare base name is not one of its files
    ]
    for name in mine + others:
        put(storage, f"Uploaded/{name}", b"x")
    put(storage, f"Pending/{BASE}.stl", b"x")  # another folder
    (storage.root / "Uploaded" / f"{BASE}.dir").mkdir()
    assert sorted(p.name for p in storage.job_files("Uploaded", BASE)) == sorted(mine)
    assert storage.job_files("Uploaded", "JaneDoe_Filament_TrueRed_a1b2c") == [
        storage.root / "Uploaded" / "JaneDoe_Filament_TrueRed_a1b2c.stl"
    ]
    assert storage.job_files("Printing", BASE) == []


# -- moves -------------------------------------------------------------------------------------


def test_move_places_copies_and_keeps_sources_until_finish(storage):
    sources = job_in(storage, "Uploaded", sliced=True)
    before = {p.name: p.read_bytes() for p in sources}
    move = storage.move(sources, "Pending", sidecar=(SIDECAR, b'{"status": "PENDING"}'))
    files = tree(storage)
    for name, data in before.items():
        assert files[f"Uploaded/{name}"] == data  # the old state is whole until the commit
    assert files[f"Pending/{BASE}.stl"] == before[f"{BASE}.stl"]
    assert files[f"Pending/{BASE}.gcode"] == before[f"{BASE}.gcode"]
    assert files[f"Pending/{SIDECAR}"] == b'{"status": "PENDING"}'
    move.finish()
    assert tree(storage) == {
        f"Pending/{BASE}.stl": before[f"{BASE}.stl"],
        f"Pending/{BASE}.gcode": before[f"{BASE}.gcode"],
        f"Pending/{SIDECAR}": b'{"status": "PENDING"}',
    }


def test_abort_takes_back_everything_placed(storage):
    sources = job_in(storage, "Uploaded", sliced=True)
    before = tree(storage)
    move = storage.move(sources, "Pending", sidecar=(SIDECAR, b'{"status": "PENDING"}'))
    move.abort()
    assert tree(storage) == before


def test_same_folder_move_rewrites_the_sidecar_and_abort_restores_it(storage):
    sources = job_in(storage, "Uploaded")
    before = tree(storage)
    move = storage.move(sources, "Uploaded", sidecar=(SIDECAR, b'{"status": "REJECTED"}'))
    assert tree(storage)[f"Uploaded/{SIDECAR}"] == b'{"status": "REJECTED"}'
    move.abort()
    assert tree(storage) == before


def test_same_folder_move_finished_keeps_every_file(storage):
    sources = job_in(storage, "Uploaded")
    upload = sources[0].read_bytes()
    storage.move(sources, "Uploaded", sidecar=(SIDECAR, b'{"status": "REJECTED"}')).finish()
    assert tree(storage) == {f"Uploaded/{BASE}.stl": upload, f"Uploaded/{SIDECAR}": b'{"status": "REJECTED"}'}


def test_finish_spares_the_folder_the_job_is_back_in(storage):
    # A second move, committed before this cleanup, took the job back to Uploaded and reused the files.
    sources = job_in(storage, "Uploaded")
    move = storage.move(sources, "Pending", sidecar=(SIDECAR, b'{"status": "PENDING"}'))
    move.finish(keep_folder=storage.resolve("Uploaded"))
    assert all(p.is_file() for p in sources)


def test_finish_tolerates_sources_already_gone(storage):
    sources = job_in(storage, "Uploaded")
    move = storage.move(sources, "Pending", sidecar=(SIDECAR, b"{}"))
    sources[0].unlink()  # removed by an earlier, interrupted cleanup
    move.finish()
    move.finish()
    assert sorted(tree(storage)) == [f"Pending/{BASE}.stl", f"Pending/{SIDECAR}"]


def test_move_refuses_to_overwrite_a_different_file_and_changes_nothing(storage):
    sources = job_in(storage, "Uploaded", sliced=True)
    put(storage, f"Pending/{BASE}.gcode", b"a different slice")
    before = tree(storage)
    with pytest.raises(AlreadyExists, match=f"Pending/{BASE}.gcode already exists"):
        storage.move(sources, "Pending", sidecar=(SIDECAR, b"{}"))
    assert tree(storage) == before


def test_move_reuses_an_identical_stale_copy_and_abort_leaves_it(storage):
    sources = job_in(storage, "Uploaded")
    stale = put(storage, f"Pending/{BASE}.stl", CUBE.read_bytes())  # a copy, not a hard link
    put(storage, f"Pending/{SIDECAR}", b'{"stale": true}')  # the sidecar an interrupted move wrote
    before = tree(storage)
    move = storage.move(sources, "Pending", sidecar=(SIDECAR, b'{"status": "PENDING"}'))
    assert stale.read_bytes() == CUBE.read_bytes()
    assert tree(storage)[f"Pending/{SIDECAR}"] == b'{"status": "PENDING"}'
    move.abort()
    assert tree(storage) == before  # the stale copy was there before this move, so it stays


def test_move_over_an_identical_stale_copy_then_finish(storage):
    sources = job_in(storage, "Uploaded")
    put(storage, f"Pending/{BASE}.stl", CUBE.read_bytes())
    storage.move(sources, "Pending", sidecar=(SIDECAR, b'{"status": "PENDING"}')).finish()
    assert tree(storage) == {
        f"Pending/{BASE}.stl": CUBE.read_bytes(),
        f"Pending/{SIDECAR}": b'{"status": "PENDING"}',
    }


def test_move_of_real_slicer_files_keeps_their_bytes(storage):
    names = ["prusaslicer_2.9.1_coreone.bgcode", "bambustudio_02.04.00.70_a1mini.gcode.3mf"]
    sources = [
        put(storage, f"Printing/{BASE}_{i}{Path(n).suffix}", (SLICED / n).read_bytes())
        for i, n in enumerate(names)
    ]
    digests = {p.name: sha256_of(p) for p in sources}
    storage.move(sources, "Completed").finish()
    assert {p.name: sha256_of(p) for p in storage.folder_files("Completed")} == digests
    assert storage.folder_files("Printing") == []


def test_move_refuses_an_unsafe_target_folder(storage):
    sources = job_in(storage, "Uploaded")
    before = tree(storage)
    with pytest.raises(UnsafePath):
        storage.move(sources, "../Elsewhere", sidecar=(SIDECAR, b"{}"))
    assert tree(storage) == before


def test_delete_removes_files_and_reports_them(storage):
    files = job_in(storage, "Archived")
    assert storage.delete(files) == [f"Archived/{BASE}.stl", f"Archived/{SIDECAR}"]
    assert tree(storage) == {}
