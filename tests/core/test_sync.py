"""Delta sync against both servers: identical first upload, no-op re-upload, deltas, deletes."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from pathlib import Path

import asyncssh
import pytest

from pacerid_tui import paths
from pacerid_tui.core.kernel.models import Instance
from pacerid_tui.core.remote import ssh, sync


@pytest.fixture
async def conn(host: Instance) -> asyncssh.SSHClientConnection:
    connection = await ssh.connect(ssh.Target.of(host, paths.known_hosts_file()))
    yield connection
    connection.close()


def make_tree(root: Path) -> None:
    for index in range(30):
        path = root / f"pkg{index % 3}" / f"mod{index}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(secrets.token_bytes(1000 + index * 37))
    (root / "big.bin").write_bytes(secrets.token_bytes(3_000_000))
    for junk in ("__pycache__/x.pyc", ".git/HEAD", "data/img.png", "notes.tmp", "keep/model.pt"):
        (root / junk).parent.mkdir(parents=True, exist_ok=True)
        (root / junk).write_text("must not be sent")


async def remote_digest(conn: asyncssh.SSHClientConnection, root: str) -> dict[str, str]:
    result = await ssh.run(conn, f"cd {root} && find . -type f -exec sha256sum {{}} +")
    return {line.split()[1][2:]: line.split()[0] for line in result.stdout.splitlines()}


def local_digest(files: dict[str, Path]) -> dict[str, str]:
    import hashlib

    return {rel: hashlib.sha256(path.read_bytes()).hexdigest() for rel, path in files.items()}


async def test_upload_sends_deltas_and_mirrors_deletes(
    conn: asyncssh.SSHClientConnection, remote_dir: str, tmp_path: Path
) -> None:
    tmp_path = tmp_path / "src"
    make_tree(tmp_path)
    excludes = sync.Excludes([*sync.DEFAULT_EXCLUDES, "*.tmp"])
    files = sync.local_tree(tmp_path, excludes)
    assert not {"__pycache__/x.pyc", ".git/HEAD", "data/img.png", "notes.tmp", "keep/model.pt"} & (
        set(files)
    )
    seen: list[sync.Progress] = []
    first = await sync.upload(conn, files, remote_dir, on_progress=seen.append)
    assert (first.files_sent, first.files_deleted) == (31, 0)
    assert await remote_digest(conn, remote_dir) == local_digest(files)
    assert seen[-1].bytes_done == seen[-1].bytes_total == first.bytes_sent > 3_000_000

    again = await sync.upload(conn, files, remote_dir)
    assert (again.files_sent, again.bytes_sent, again.files_deleted) == (0, 0, 0)

    changed = tmp_path / "pkg1" / "mod4.py"
    changed.write_bytes(b"new content")
    os.utime(changed, (1_700_000_000, 1_700_000_000))
    (tmp_path / "pkg2" / "mod5.py").unlink()
    files = sync.local_tree(tmp_path, excludes)
    delta = await sync.upload(conn, files, remote_dir)
    assert (delta.files_sent, delta.bytes_sent, delta.files_deleted) == (1, 11, 1)
    assert await remote_digest(conn, remote_dir) == local_digest(files)


async def test_download_fetches_only_new_or_changed_files(
    conn: asyncssh.SSHClientConnection, remote_dir: str, tmp_path: Path
) -> None:
    await ssh.run(
        conn,
        f"mkdir -p {remote_dir}/sub && cd {remote_dir} && "
        "head -c 500000 /dev/urandom > a.bin && echo one > sub/b.txt && "
        "echo skip > checkpoint_epoch_001.pt",
    )
    tmp_path = tmp_path / "results"
    wanted = lambda rel: not rel.startswith("checkpoint_epoch_")  # noqa: E731
    first = await sync.download(conn, remote_dir, tmp_path, wanted=wanted)
    assert (first.files_sent, first.bytes_sent) == (2, 500_004)
    assert (tmp_path / "sub" / "b.txt").read_text() == "one\n"
    assert not (tmp_path / "checkpoint_epoch_001.pt").exists()
    assert not list(tmp_path.rglob(".*.part"))
    assert (await sync.download(conn, remote_dir, tmp_path, wanted=wanted)).files_sent == 0
    await ssh.run(conn, f"echo two-two > {remote_dir}/sub/b.txt")
    again = await sync.download(conn, remote_dir, tmp_path, wanted=wanted)
    assert again.files_sent == 1
    assert (tmp_path / "sub" / "b.txt").read_text() == "two-two\n"


async def test_a_same_size_rewrite_within_the_listed_second_is_downloaded(
    conn: asyncssh.SSHClientConnection, remote_dir: str, tmp_path: Path
) -> None:
    """Two fp16 snapshots of one model: same size, written in the same whole second. The first
    download lists and fetches the first; the second must fetch the second (git's racy-index
    rule, Documentation/technical/racy-git.txt). `touch -d @S` sets that shared second on the
    host, as os.utime would, a little ahead of the clock so the listing falls in it or before
    whatever the machine's load; an old file next to it keeps trusting the quick check."""
    second = int(time.time()) + 3
    remote = f"{remote_dir}/model_best_fp16.pt"
    await ssh.run(
        conn,
        f"mkdir -p {remote_dir} && printf one > {remote} && touch -d @{second} {remote} && "
        f"printf old > {remote_dir}/old.txt && touch -d @1700000000 {remote_dir}/old.txt",
    )
    results = tmp_path / "results"
    first = await sync.download(conn, remote_dir, results)
    assert (first.files_sent, (results / "model_best_fp16.pt").read_text()) == (2, "one")

    await ssh.run(conn, f"printf two > {remote} && touch -d @{second} {remote}")
    again = await sync.download(conn, remote_dir, results)
    assert (results / "model_best_fp16.pt").read_text() == "two"
    assert (again.files_sent, again.bytes_sent, again.files_hashed) == (1, 3, 1)
    assert int((results / "model_best_fp16.pt").stat().st_mtime) == second

    # still racy (its second is not over), so compared again: equal now, nothing moves
    third = await sync.download(conn, remote_dir, results)
    assert (third.files_sent, third.files_hashed) == (0, 1)


async def test_a_racy_entry_left_out_meanwhile_is_still_compared_when_wanted_again(
    conn: asyncssh.SSHClientConnection, remote_dir: str, tmp_path: Path
) -> None:
    """The notice download fetches checkpoint_best.pt within its second; the downloads during
    training leave checkpoints out (`wanted`); the final one must still compare it. The host's
    clock has to pass that second between the two listings: the one wait here (under 2 s)."""
    second = int(time.time()) + 1
    remote = f"{remote_dir}/checkpoint_best.pt"
    await ssh.run(
        conn, f"mkdir -p {remote_dir} && printf one > {remote} && touch -d @{second} {remote}"
    )
    results = tmp_path / "results"
    assert (await sync.download(conn, remote_dir, results)).files_sent == 1
    await ssh.run(conn, f"printf two > {remote} && touch -d @{second} {remote}")
    while time.time() < second + 1.1:
        await asyncio.sleep(0.1)
    log = f"{remote_dir}/train.log"
    await ssh.run(conn, f"echo log > {log} && touch -d @1700000000 {log}")
    training = await sync.download(conn, remote_dir, results, wanted=lambda rel: rel == "train.log")
    assert training.files_sent == 1 and (results / "checkpoint_best.pt").read_text() == "one"
    final = await sync.download(conn, remote_dir, results)
    assert (results / "checkpoint_best.pt").read_text() == "two"
    assert (final.files_sent, final.files_hashed) == (1, 1)  # train.log, long settled: trusted


async def test_a_same_size_save_within_the_uploaded_second_is_uploaded(
    conn: asyncssh.SSHClientConnection, remote_dir: str, tmp_path: Path
) -> None:
    """An editor saves train.py twice within one second, an upload reading it in between: same
    size, same whole-second mtime, so the quick check alone calls the second save unchanged.
    The upload's racy rule compares it by hash. The shared second is set with os.utime a
    little ahead of the clock, so the first upload falls in it or before whatever the load;
    an old file next to it keeps trusting the quick check, and the host's folder holds exactly
    the files (the bookkeeping lies beside it)."""
    second = int(time.time()) + 3
    source = tmp_path / "src"
    source.mkdir()
    script = source / "train.py"
    script.write_text("lr = 0.1\n")
    os.utime(script, (second, second))
    (source / "old.py").write_text("x = 1\n")
    os.utime(source / "old.py", (1_700_000_000, 1_700_000_000))
    files = sync.local_tree(source, sync.Excludes())
    assert (await sync.upload(conn, files, remote_dir)).files_sent == 2

    script.write_text("lr = 0.2\n")
    os.utime(script, (second, second))
    again = await sync.upload(conn, files, remote_dir)
    assert (await ssh.run(conn, f"cat {remote_dir}/train.py")).stdout == "lr = 0.2\n"
    assert (again.files_sent, again.bytes_sent, again.files_hashed) == (1, 9, 1)

    # still racy (its second is not over), so compared again: equal now, nothing moves
    third = await sync.upload(conn, files, remote_dir)
    assert (third.files_sent, third.files_hashed, third.files_deleted) == (0, 1, 0)
    assert await remote_digest(conn, remote_dir) == local_digest(files)


def test_excludes_follow_gitignore_shapes() -> None:
    ex = sync.Excludes(["build/", "*.log", "docs/private", "secret.txt"])
    assert ex.excluded("build", True) and not ex.excluded("build", False)
    assert ex.excluded("a/b/run.log", False)
    assert ex.excluded("docs/private", True) and not ex.excluded("x/docs/private", True)
    assert ex.excluded("deep/secret.txt", False)
    assert not ex.excluded("src/main.py", False)


async def test_many_files_go_as_one_stream_and_stay_in_sync(
    conn: asyncssh.SSHClientConnection, remote_dir: str, tmp_path: Path
) -> None:
    for index in range(sync.TAR_FROM_FILES + 36):
        path = tmp_path / "many" / f"d{index % 7}" / f"f{index}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(secrets.token_bytes(index * 13))
    script = tmp_path / "many" / "run.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    files = sync.local_tree(tmp_path / "many", sync.Excludes())
    seen: list[sync.Progress] = []
    first = await sync.upload(conn, files, remote_dir, on_progress=seen.append)
    assert first.files_sent == len(files) == sync.TAR_FROM_FILES + 37
    assert await remote_digest(conn, remote_dir) == local_digest(files)
    assert seen[-1].files_done == len(files)
    assert (await ssh.run(conn, f"{remote_dir}/run.sh")).stdout == "hi\n"  # modes kept
    again = await sync.upload(conn, files, remote_dir)
    assert (again.files_sent, again.bytes_sent) == (0, 0)  # mtimes survived the stream
