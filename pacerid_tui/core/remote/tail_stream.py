"""The host side of streaming a file: one exec channel running `tail -c +OFFSET -F FILE`.

A line reaches us as soon as the host writes it (GNU tail waits on inotify), instead of at the
next SFTP poll. What arrives is exactly the file's bytes from OFFSET, so the follower counts
its offset from them, and a reconnect resumes where the last delivered line ended.

tail's notices (truncated, replaced, appeared, gone) go into the same pipe as the data
(`2>&1`): tail flushes the file's bytes before it writes a notice, so a notice sits exactly
where the old file ends and the new one starts. A separate stderr would not say where. Notices
name the file, so `Notices` finds them by that name (only plain paths are streamed, whose
quoting is known) and they are never mistaken for lines.

The command prints one header line first (`pacerid-follow <inode>`): it proves the stream
started with a GNU tail (anything else is left to SFTP polling) and lets the follower see that a
file was replaced while it was away. A small reader on the channel's stdin kills tail when the
channel closes, so a dropped connection leaves no tail running on the host.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

HEADER = b"pacerid-follow"
PLAIN_PATH = re.compile(r"[A-Za-z0-9._/+-]+")
"""Paths whose name GNU tail prints bare or in single quotes (its shell-escape quoting)."""


def streamable(path: str) -> bool:
    """Whether `path` can be streamed: its notices are recognisable, and it needs no shell
    quoting (none of its characters means anything to the shell), so `command` writes it bare."""
    return PLAIN_PATH.fullmatch(path) is not None and not path.startswith("-")


def command(path: str, offset: int) -> str:
    """The host command streaming `path` from byte `offset` (0-based; tail's +N is 1-based)."""
    return (
        'case "$(tail --version 2>/dev/null)" in *"GNU coreutils"*) ;; *) exit 127 ;; esac; '
        f"printf '{HEADER.decode()} %s\\n' \"$(ls -diL -- {path} 2>/dev/null)\"; "
        "exec 3<&0; "
        f"LC_ALL=C tail -c +{offset + 1} -F -- {path} 2>&1 </dev/null 3<&- & t=$!; "
        # Ends (and ends tail) when the channel closes: sshd and the embedded server then close
        # the command's stdin. Without it tail would run until it next wrote to a closed pipe.
        "{ while read -r _; do :; done <&3; kill $t; } >/dev/null 2>&1 & w=$!; "
        "wait $t; s=$?; kill $w 2>/dev/null; exit $s"
    )


def inode(header: bytes) -> str | None:
    """The inode in a header line; None when the file did not exist."""
    fields = header.split()
    return fields[1].decode() if len(fields) > 1 and fields[0] == HEADER else None


class Kind(Enum):
    TRUNCATED = "truncated"
    """tail read the file again from its start, on the same stream."""
    REPLACED = "replaced"
    """Another file now has the name (or the file appeared): the stream starts again."""
    ENDED = "ended"
    """tail gave up on the file: stream no more, poll instead."""
    NOTED = "noted"
    """Anything else tail says (the file is missing, inotify is unavailable): no data."""


@dataclass(frozen=True)
class Notice:
    start: int
    end: int
    kind: Kind


GENERAL = (b"inotify", b"no files remaining", b"directory containing watched file")
"""Notices that name no file."""


class Notices:
    """Finds tail's notices about one file in the stream of its bytes."""

    def __init__(self, path: str) -> None:
        name = re.escape(path.encode())
        about = rb"(?:'%s'|%s)" % (name, name)
        general = b"|".join(re.escape(text) for text in GENERAL)
        self.pattern = re.compile(rb"tail: (?:[^\n]*%s[^\n]*|(?:%s)[^\n]*)\n" % (about, general))

    def search(self, data: bytes) -> Notice | None:
        if b"tail: " not in data:  # the common case, without the regex
            return None
        found = self.pattern.search(data)
        if found is None:
            return None
        text = found.group()
        if text.endswith(b": file truncated\n"):
            kind = Kind.TRUNCATED
        elif b"following new file" in text:
            kind = Kind.REPLACED
        elif b"giving up" in text or b"no files remaining" in text:
            kind = Kind.ENDED
        else:
            kind = Kind.NOTED
        return Notice(found.start(), found.end(), kind)
