"""Pictures of what a model learned: each figure is a function returning a matplotlib
Figure; ``write_report`` gathers all that apply to a run in one HTML page."""

from .canvas import DPI, save_png
from .figures import TITLES, run_figures, title
from .plots import (confusion_figure, latent_scatter_figure, learning_curves_figure, roc_figure,
                    score_hist_figure)
from .report import report_html, write_report
from .samples import (generate_figure, generation_grid, generation_head, kl_per_dim, rank_dims,
                      reconstructions_figure, traversal_grid, traverse_figure)

__all__ = ["DPI", "TITLES", "confusion_figure", "generate_figure", "generation_grid", "generation_head", "kl_per_dim",
           "latent_scatter_figure", "learning_curves_figure", "rank_dims", "reconstructions_figure", "report_html",
           "roc_figure", "run_figures", "save_png", "score_hist_figure", "title", "traversal_grid", "traverse_figure",
           "write_report"]
