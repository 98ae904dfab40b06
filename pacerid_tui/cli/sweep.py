"""`pacerid-tui sweep`: everything this tool tagged that is still there, on this machine and in
every region the AWS account has enabled, with what each costs a day; `--yes` removes what no
run uses and says what it removed (the core: core/steps/leftovers.py).

Exit code 1 when something costs money (or may start to, an open spot request) or a region
could not be read, 0 when nothing of ours costs anything: a script can ask "is anything
billing?" without parsing the table.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from pacerid_tui import paths
from pacerid_tui.config import load_config
from pacerid_tui.core.kernel.models import Inventory, Leftover, Swept
from pacerid_tui.core.steps import leftovers
from pacerid_tui.core.steps.lifecycle import Lifecycle


async def sweep(lifecycle: Lifecycle, args: argparse.Namespace) -> int:
    config = load_config(paths.config_file(args.config))
    found_in = leftovers.providers(config, lifecycle.provider_for_config)
    found = await asyncio.to_thread(leftovers.inventory, found_in, lifecycle.registry.runs())
    swept: Swept | None = Swept() if args.yes else None
    after = found
    if args.yes and found.leftovers:

        def say(message: str) -> None:
            print(message, file=sys.stderr, flush=True)

        swept = await asyncio.to_thread(leftovers.sweep, found_in, found, say)
        after = await asyncio.to_thread(leftovers.inventory, found_in, lifecycle.registry.runs())
    if args.json:
        print(json.dumps(as_json(found, swept, after), indent=2))
    else:
        show(found, swept, after)
    return 1 if leftovers.billing(after) or after.unreadable else 0


WHERE = f"AWS: everything tagged {leftovers.TAG}, in every enabled region; local: its instances"


def things(count: int) -> str:
    return f"{count} leftover{'s' if count != 1 else ''} no run uses"


def row(item: Leftover) -> dict[str, Any]:
    return {**dataclasses.asdict(item), "billing": item.billing}


def as_json(found: Inventory, swept: Swept | None, after: Inventory) -> dict[str, Any]:
    """What was found (each with `billing`, and `in_use_by` for what a run keeps), where it
    could not tell, and with --yes what was removed, what failed and what is left."""
    answer: dict[str, Any] = {
        "tag": leftovers.TAG,
        "found": [row(item) for item in found.found],
        "cannot_tell": [dataclasses.asdict(place) for place in found.unreadable],
        "usd_per_day": round(leftovers.per_day(leftovers.billing(found)), 4),
    }
    if swept is not None:
        answer["removed"] = [row(item) for item in swept.removed]
        answer["failures"] = list(swept.failures)
        answer["left"] = [row(item) for item in after.leftovers]
    return answer


def show(found: Inventory, swept: Swept | None, after: Inventory) -> None:
    console = Console() if sys.stdout.isatty() else Console(width=240)  # pipes: never truncate
    if found.found:
        console.print(table(found.found, f"Still there ({WHERE})"))
    for place in found.unreadable:
        console.print(
            f"Cannot tell for {place.region} ({place.provider}): {place.reason}", markup=False
        )
    if swept is not None:
        for item in swept.removed:
            console.print(f"Removed {leftovers.named(item)}.", markup=False)
        for failure in swept.failures:
            console.print(f"Not removed: {failure}", markup=False)
    paying = leftovers.billing(after)
    if paying:
        console.print(
            f"{things(len(paying))} cost ${leftovers.per_day(paying):.2f}/day"
            + (" or may start to" if any(i.kind == "spot request" for i in paying) else "")
            + (
                "; remove them: [b]pacerid-tui sweep --yes[/b]"
                if swept is None
                else "; see above why they were not removed."
            )
        )
    elif after.leftovers and swept is None:
        console.print(
            f"{things(len(after.leftovers))} cost nothing; "
            "[b]pacerid-tui sweep --yes[/b] removes them."
        )
    elif not after.unreadable:
        console.print(f"Nothing of ours costs money now ({WHERE}).")


def table(items: tuple[Leftover, ...], title: str) -> Table:
    grid = Table(title=title, title_justify="left")
    for name in ("Provider", "Region", "Kind", "Id", "State", "$/day", "Run", "Kept for", "Detail"):
        grid.add_column(name, justify="right" if name == "$/day" else "left")
    for item in items:
        grid.add_row(
            item.provider,
            item.region,
            item.kind,
            item.resource_id,
            item.state,
            f"{item.usd_per_day:.2f}" if item.usd_per_day is not None else "?",
            item.run_id or "-",
            item.in_use_by or "-",
            item.detail,
        )
    return grid
