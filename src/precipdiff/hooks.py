"""Project hooks (registered in ``settings.HOOKS``): Ctrl-C handling and stale temporary files.

:class:`InterruptHooks` makes SIGINT stop a run with a non-zero exit status whatever it interrupts
(:mod:`precipdiff.interrupts`), and removes the temporary files of dead processes under the
project's ``data/`` folder at the start of every run (:func:`precipdiff.atomic.remove_stale_under`).
"""

from __future__ import annotations

from pathlib import Path

from kedro.framework.hooks import hook_impl

from precipdiff import interrupts
from precipdiff.atomic import remove_stale_under


class InterruptHooks:
    """SIGINT → ``KeyboardInterrupt`` at the next node, save or at the end, even if it was swallowed.

    Hook implementations take only the arguments they use (pluggy passes them by name).
    """

    def __init__(self) -> None:
        self._data_dir: Path | None = None

    @hook_impl
    def after_context_created(self, context) -> None:
        self._data_dir = Path(context.project_path) / "data"

    @hook_impl
    def before_pipeline_run(self) -> None:
        interrupts.reset()
        interrupts.install()
        if self._data_dir is not None:
            remove_stale_under(self._data_dir)

    @hook_impl
    def before_node_run(self) -> None:
        interrupts.check()

    @hook_impl
    def after_node_run(self) -> None:
        interrupts.check()

    @hook_impl
    def after_dataset_saved(self) -> None:
        interrupts.check()

    @hook_impl
    def after_pipeline_run(self) -> None:
        try:
            interrupts.check()
        finally:
            interrupts.uninstall()

    @hook_impl
    def on_pipeline_error(self) -> None:
        interrupts.uninstall()
