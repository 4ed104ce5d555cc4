"""Optional experiment tracking with wandb on top of the JSON/CSV outputs (offline by default)."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


class Tracker:
    """Thin wrapper: a no-op when mode is 'disabled' or wandb cannot start, so metrics files never depend on
    it."""

    def __init__(
        self,
        *,
        mode: str = "offline",
        project: str = "saeflow",
        group: str | None = None,
        name: str | None = None,
        config: dict | None = None,
        dir: str | None = None,
    ):
        self.run = None
        if mode == "disabled":
            return
        try:
            import wandb

            self.run = wandb.init(
                project=project,
                group=group,
                name=name,
                config=config,
                mode=mode,
                dir=dir,
                reinit="finish_previous",
            )
        except Exception as err:  # noqa: BLE001 (tracking must never break a training run)
            log.warning("wandb disabled: %s", err)

    def log(self, values: dict[str, Any], step: int | None = None) -> None:
        if self.run is not None:
            self.run.log(values, step=step)

    def summary(self, values: dict[str, Any]) -> None:
        if self.run is not None:
            self.run.summary.update(values)

    def finish(self) -> None:
        if self.run is not None:
            self.run.finish()
            self.run = None
