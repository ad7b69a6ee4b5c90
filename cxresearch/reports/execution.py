"""The papermill engine of `cxresearch run`: papermill's own, saving the executed notebook less often.

papermill writes the whole output notebook (serialised and validated, images included) when each
cell starts and again when it ends: about forty writes for a deep dive of twenty cells, a tenth of
a second of the worker's CPU per report, spent while the two cores are wanted by kernels. This
engine saves a running notebook at most every `SAVE_EVERY` seconds, and always when it ends, fails
or is stopped (papermill's final save runs on any exit, a time limit's included), so what a report
leaves on disk is complete whenever it stops; only a worker killed outright leaves a notebook at
most `SAVE_EVERY` seconds behind its kernel. Everything else is papermill's NBClient engine.

Use it with ``papermill.execute_notebook(..., engine_name=ENGINE)`` after `register()`.
"""

from __future__ import annotations

from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines

ENGINE = "cxresearch"
SAVE_EVERY = 1.0  # seconds between saves of a running notebook


class SparingExecutionManager(NotebookExecutionManager):
    """papermill's execution manager, whose saves when a cell starts or ends are skipped until
    `SAVE_EVERY` seconds have passed since the last save; the first and the final save, and
    papermill's autosave during a long cell, are made as papermill makes them."""

    _at_a_cell = False  # inside `cell_start` or `cell_complete`

    def save(self, **kwargs):
        if self._at_a_cell and (self.now() - self.last_save_time).total_seconds() < SAVE_EVERY:
            return
        super().save(**kwargs)

    def cell_start(self, cell, cell_index=None, **kwargs):
        return self._sparingly(super().cell_start, cell, cell_index, **kwargs)

    def cell_complete(self, cell, cell_index=None, **kwargs):
        return self._sparingly(super().cell_complete, cell, cell_index, **kwargs)

    def _sparingly(self, step, *args, **kwargs):
        self._at_a_cell = True
        try:
            return step(*args, **kwargs)
        finally:
            self._at_a_cell = False


class SparingEngine(NBClientEngine):
    """papermill's NBClient engine with `SparingExecutionManager`."""

    @classmethod
    def execute_notebook(cls, nb, kernel_name, output_path=None, progress_bar=True, log_output=False,
                         autosave_cell_every=30, **kwargs):
        # papermill's `Engine.execute_notebook`, with this module's manager
        nb_man = SparingExecutionManager(nb, output_path=output_path, progress_bar=progress_bar,
                                         log_output=log_output, autosave_cell_every=autosave_cell_every)
        nb_man.notebook_start()
        try:
            cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, **kwargs)
        finally:
            nb_man.cleanup_pbar()
            nb_man.notebook_complete()
        return nb_man.nb


def register() -> str:
    """Make the engine known to papermill (idempotent); returns its name."""
    papermill_engines.register(ENGINE, SparingEngine)
    return ENGINE
