"""A stand-in `nvidia-smi` for hosts without a GPU, put first on PATH.

It prints what NVIDIA's documentation of the tool (nvidia-smi(1): "GPU ATTRIBUTES" and the
`--format=csv,noheader,nounits` option) describes for our query
`--query-gpu=index,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw`: one
line per GPU, fields separated by a comma and a space, no units (utilisation in %, memory in
MiB, temperature in °C, power in W with two decimals), and "[N/A]" where a board does not
report a field. Other arguments are refused with exit code 2, as the real tool refuses an
unknown field.
"""

from __future__ import annotations

import stat
from pathlib import Path

from trainer.system import GPU_QUERY

STARVED_CSV = "0, 38, 14562, 15360, 71, 64.83\n1, 40, 9811, 15360, 68, [N/A]\n"
"""Two T4-sized boards (15360 MiB), mostly idle: what a starved input pipeline looks like."""
BUSY_CSV = "0, 97, 11020, 15360, 78, 69.12\n"
"""One board at work."""
IDLE_CSV = "0, 0, 1210, 15360, 41, 27.50\n"
"""One board doing nothing while the trainer lives (a loop that never reaches the GPU)."""


def install(folder: Path, csv: str = STARVED_CSV) -> Path:
    """Write `folder`/nvidia-smi printing `csv` for exactly our query; returns `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "nvidia-smi"
    script.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = "--query-gpu={GPU_QUERY}" ] && [ "$2" = "--format=csv,noheader,nounits" ] '
        "|| { echo \"Field '$1' is not a valid field to query.\" >&2; exit 2; }\n"
        f"printf '%s' '{csv}'\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return folder
