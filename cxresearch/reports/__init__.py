"""Reports, the last stage: the brand-level results every notebook shares, plain-language sentences
and tables (`prose`), charts (`plots`), what a notebook opens with (`open_report`), and the runner
that executes and publishes the notebooks (`runner`).

Imported on first use (`cx.reports`, `cx.plots`): they pull in matplotlib, IPython and nbconvert,
which the command line and the measures do not need."""

from cxresearch import lazy_exports

__getattr__, __dir__ = lazy_exports(
    globals(), {m: f"cxresearch.reports.{m}" for m in ("brand", "plots", "prose", "publish", "runner", "store")},
    {"open_report": "cxresearch.reports.notebook", "open_store": "cxresearch.reports.store"})

__all__ = ["brand", "open_report", "open_store", "plots", "prose", "store"]
