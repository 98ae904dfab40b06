"""The selected run at a glance: instance, market, price, cost, forecast, budget, training."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.content import Content
from textual.markup import escape
from textual.widget import Widget

if TYPE_CHECKING:  # runs come once the core is up, after the dashboard's first frame
    from pacerid_tui.core.kernel.models import Run
    from pacerid_tui.core.steps.status import RunStatus
    from pacerid_tui.ui.training import Training


def bar(fraction: float, width: int = 20) -> str:
    filled = max(0, min(width, round(fraction * width)))
    return "█" * filled + "░" * (width - filled)


class RunDetails(Widget):
    """A fixed-size panel (see app.tcss): new text repaints it without a layout pass of the
    whole screen, which `Static.update` would cost on every training step."""

    shown = ""
    """The markup on screen, so an unchanged panel is not redrawn."""

    def render(self) -> Content:
        return Content.from_markup(self.shown)

    def show(
        self,
        run: Run | None,
        row: RunStatus | None,
        *,
        training: Training | None = None,
        max_price: float | None = None,
        warning: str | None = None,
        activity: str = "",
    ) -> None:
        """The run and its status row; the budget's bar is the row's (`budget_rule`), red once
        the rule warns."""
        if run is None or row is None:
            self._paint("No run selected: [b]l[/b] launches one, [b]r[/b] runs every step.")
            return
        from pacerid_tui.core.steps.status import uptime_text  # a row: the core is up

        inst = run.instance
        cap = "" if max_price is None or run.provider != "aws" else f" (max ${max_price:.2f}/h)"
        lines = [
            f"[b]{run.run_id}[/b]  {row.state}"
            + (f" — {row.state_reason}" if row.state_reason else ""),
            f"instance {inst.instance_id if inst else '-'}  "
            f"{inst.host if inst else '-'}:{inst.port if inst else '-'}  "
            f"{inst.instance_type if inst else '-'} {inst.market if inst else ''}{cap}",
            f"image {inst.image_name if inst and inst.image_name else '-'}",
            f"price now {'-' if row.price_per_hour is None else f'${row.price_per_hour:.4f}/h'}"
            f"  cost so far [b]${row.cost_usd:.4f}[/b]  uptime {uptime_text(row.uptime_s)}",
        ]
        ahead = self._ahead(row)
        if ahead:
            lines.append(ahead)
        if row.cost_parts:
            lines.append(self._parts(row.cost_parts, row.budget_includes_egress))
        share, budget_usd = row.budget_share, row.budget_usd
        if share is not None and budget_usd is not None:
            colour = "red" if row.budget_warning else "green"
            stops = (
                f" · [b red]stops in epoch {row.budget_epoch}[/b red]"
                if row.budget_epoch and not row.over_budget  # past it, the stop is under way
                else ""
            )
            lines.append(
                f"budget [{colour}]{bar(share)}[/{colour}] {share:4.0%} of ${budget_usd:.2f}"
                + stops
            )
        lines.extend(self._training(run, training))
        lines.append("steps done: " + (", ".join(run.steps_done) or "none"))
        if run.ended:
            lines.append(f"[b]ended:[/b] {escape(run.ended)}")
        if warning:
            lines.append(f"[b red]⚠ {warning}[/b red]")
        if activity:
            lines.append(f"[i]{activity}[/i]")
        self._paint("\n".join(lines))

    def _paint(self, markup: str) -> None:
        if markup != self.shown:
            self.shown = markup
            self.refresh()

    @staticmethod
    def _parts(parts: dict[str, float], egress_budgeted: bool) -> str:
        """The total by part; egress is an upper bound (the first 100 GB a month are free
        account-wide), marked so where the budget leaves it out."""
        egress = parts.get("egress", 0.0)
        return (
            f"compute ${parts.get('compute', 0.0):.4f} · volume ${parts.get('volume', 0.0):.4f}"
            f" · IPv4 ${parts.get('ipv4', 0.0):.4f} · egress {'' if egress_budgeted else '≤'}"
            f"${egress:.4f}"
        )

    @staticmethod
    def _ahead(row: RunStatus) -> str:
        """The forecast at this pace and price, and beside it the work an interruption now
        would make the run do again: since the newest checkpoint it could resume from."""
        from pacerid_tui.core.steps.status import uptime_text  # a row: the core is up

        parts = []
        if row.forecast_usd is not None:
            parts.append(
                f"forecast [b]${row.forecast_usd:.2f}[/b] · {uptime_text(row.seconds_left)} left"
            )
        if row.at_risk_s is not None and row.at_risk_usd is not None:
            parts.append(f"at risk {uptime_text(row.at_risk_s)} ${row.at_risk_usd:.2f}")
        return " · ".join(parts)

    @staticmethod
    def _training(run: Run, training: Training | None) -> list[str]:
        from pacerid_tui.core.kernel import cost
        from pacerid_tui.core.steps.status import uptime_text

        epochs = run.epochs or 0
        epoch = run.epoch or 0
        if not epochs:
            return []
        progress = f"epoch {epoch}/{epochs} {bar(epoch / epochs)}"
        if training is not None:
            speed = training.images_per_s
            if speed:
                progress += f"  {speed:.0f} img/s"
            left = cost.remaining_seconds(training.epoch_seconds(), epochs)
            if left and epoch < epochs:
                progress += f"  ETA {uptime_text(left)}"
        if run.val_acc is not None:
            progress += f"  val acc {run.val_acc:.1%}"
        result = training.result if training is not None else None
        if result is not None and result.test_acc is not None:
            progress += f"  [b]test acc {result.test_acc:.1%}[/b] (epoch {result.best_epoch})"
        return [progress]
