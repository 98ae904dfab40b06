"""The selected run at a glance: instance, market, price, cost, projection, budget, training."""

from __future__ import annotations

from textual.widgets import Static

from pacerid_tui.core.models import MetricEvent, Run
from pacerid_tui.core.status import RunStatus
from pacerid_tui.ui.widgets.runs_table import uptime_text


def bar(fraction: float, width: int = 20) -> str:
    filled = max(0, min(width, round(fraction * width)))
    return "█" * filled + "░" * (width - filled)


class RunDetails(Static):
    def show(
        self,
        run: Run | None,
        row: RunStatus | None,
        last: MetricEvent | None,
        budget_usd: float | None,
        activity: str,
    ) -> None:
        if run is None or row is None:
            self.update(
                "No run selected. Press [b]n[/b] to launch one, [b]a[/b] to run everything."
            )
            return
        inst = run.instance
        lines = [
            f"[b]{run.run_id}[/b]  {row.state}"
            + (f" — {row.state_reason}" if row.state_reason else ""),
            f"instance {inst.instance_id if inst else '-'}  "
            f"{inst.host if inst else '-'}:{inst.port if inst else '-'}  "
            f"{inst.instance_type if inst else '-'} {inst.market if inst else ''}  "
            f"image: {inst.image_name if inst and inst.image_name else '-'}",
            f"price now {'-' if row.price_per_hour is None else f'${row.price_per_hour:.4f}/h'}"
            f"  cost so far [b]${row.cost_usd:.4f}[/b]  uptime {uptime_text(row.uptime_s)}",
        ]
        if budget_usd:
            share = row.cost_usd / budget_usd
            lines.append(f"budget {bar(share)} {share:4.0%} of ${budget_usd:.2f}")
        epochs = run.epochs or 0
        epoch = run.epoch or 0
        if epochs:
            progress = f"epoch {epoch}/{epochs} {bar(epoch / epochs)}"
            if last is not None and last.images_per_s:
                progress += f"  {last.images_per_s:.0f} img/s"
            if run.val_acc is not None:
                progress += f"  val acc {run.val_acc:.1%}"
            lines.append(progress)
        lines.append("steps done: " + (", ".join(run.steps_done) or "none"))
        if activity:
            lines.append(f"[i]{activity}[/i]")
        self.update("\n".join(lines))
