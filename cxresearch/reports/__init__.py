"""Reports, the last stage: the brand-level results every notebook shares, plain-language sentences
and tables (`prose`), charts (`plots`), what a notebook opens with (`open_report`), and the runner
that executes and publishes the notebooks (`runner`).

Imported on first use (`cx.reports`, `cx.plots`): they pull in matplotlib, IPython and nbconvert,
which the command line and the measures do not need."""

from cxresearch.reports import brand, plots, prose
from cxresearch.reports.notebook import open_report

__all__ = ["brand", "open_report", "plots", "prose"]
