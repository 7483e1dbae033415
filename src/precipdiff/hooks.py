"""Project hooks (registered in ``settings.HOOKS``): Ctrl-C handling and stale temporary files.

:class:`InterruptHooks` makes SIGINT stop a run with a non-zero exit status whatever it interrupts
(:mod:`precipdiff.interrupts`), and removes the temporary files of dead processes under the
project's ``data/`` folder at the start of every run (:func:`precipdiff.atomic.remove_stale_under`).
:func:`close_session_run` tidies up after a run in a process that goes on, where no hook can.
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


def close_session_run(interrupted: bool) -> None:
    """After ``session.run`` in a process that goes on (``precipdiff.cli.main`` called from Python, a
    notebook, the tests): end the MLflow runs kedro-mlflow left open and forget the run's SIGINT state.

    Kedro calls the ``on_pipeline_error`` hooks for an ``Exception`` only. A run stopped by
    ``KeyboardInterrupt`` therefore leaves kedro-mlflow's run open — ended here as ``KILLED``
    (``interrupted``), not ``FINISHED`` — and :class:`InterruptHooks`' SIGINT handler installed with
    the interrupt still recorded, so that every later atomic write outside a run would refuse to
    publish its file (:func:`precipdiff.atomic.atomic_write`); the handler and the record go here.
    """
    import mlflow

    while mlflow.active_run() is not None:
        mlflow.end_run("KILLED" if interrupted else "FINISHED")
    interrupts.uninstall()
    interrupts.reset()
