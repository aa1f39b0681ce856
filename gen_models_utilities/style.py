"""The book's plot style, applied only when asked (importing the package changes nothing).

The style is seaborn's "muted" palette and one of seaborn's plotting contexts. The context is
written out here rather than set through ``seaborn.set_context``: importing seaborn pulls in
scipy and pandas and costs a notebook's header cell about 1.5 s. ``tests/test_animation_style.py``
checks that the values below equal ``seaborn.plotting_context``.
"""
from __future__ import annotations

from ._checks import check_choice

CONTEXT_SCALES = {"paper": 0.8, "notebook": 1.0, "talk": 1.5, "poster": 2.0}

# seaborn's "notebook" context; the other contexts scale every value by CONTEXT_SCALES.
NOTEBOOK_CONTEXT = {
    "font.size": 12, "axes.labelsize": 12, "axes.titlesize": 12, "xtick.labelsize": 11,
    "ytick.labelsize": 11, "legend.fontsize": 11, "legend.title_fontsize": 12,
    "axes.linewidth": 1.25, "grid.linewidth": 1, "lines.linewidth": 1.5, "lines.markersize": 6,
    "patch.linewidth": 1, "xtick.major.width": 1.25, "ytick.major.width": 1.25,
    "xtick.minor.width": 1, "ytick.minor.width": 1, "xtick.major.size": 6, "ytick.major.size": 6,
    "xtick.minor.size": 4, "ytick.minor.size": 4,
}


def plotting_context(context: str = "notebook") -> dict:
    """The rcParams of seaborn's plotting ``context`` ('paper', 'notebook', 'talk', 'poster')."""
    check_choice("context", context, tuple(CONTEXT_SCALES))
    scale = CONTEXT_SCALES[context]
    return {key: value * scale for key, value in NOTEBOOK_CONTEXT.items()}


def use_book_style(context: str = "notebook") -> None:
    """Use the book's muted seaborn style; ``context`` is a seaborn context ('notebook', 'talk')."""
    import matplotlib.pyplot as plt

    rc = plotting_context(context)
    plt.style.use("seaborn-v0_8-muted")
    plt.rcParams.update(rc)
    plt.rcParams.update({"figure.dpi": 72, "savefig.dpi": 72, "axes.grid": True, "grid.alpha": 0.25})
    _crop_inline_figures(context in ("talk", "poster"))


PROJECTOR_DPI = 96      # pixels per inch in the projector style: the 13-inch live trainer is 1248 px wide


def use_projector_style() -> None:
    """The book's style for a lecture hall: seaborn's 'talk' context and figures at PROJECTOR_DPI.

    Labels are 1.5 times larger and every figure (and explorer built afterwards) has a third
    more pixels, so a 1280 x 720 projector shows the live trainer across its width and the
    explorers' labels stay legible at the back of the room.
    """
    import matplotlib.pyplot as plt

    use_book_style("talk")
    plt.rcParams.update({"figure.dpi": PROJECTOR_DPI, "savefig.dpi": PROJECTOR_DPI})


def _crop_inline_figures(crop: bool) -> None:
    """Whether Jupyter's inline backend crops each figure to its tight bounding box.

    The crop (the backend's default) lays every figure out a second time before saving it,
    about a third of each redraw. The suite's figures lay themselves out (``tight_layout`` or
    ``plotting.fit_margins``), so at the notebook's font sizes they are shown uncropped; the
    larger fonts of 'talk' and 'poster' keep the crop. Outside Jupyter this does nothing.
    """
    import matplotlib

    if "inline" not in matplotlib.get_backend():
        return
    from matplotlib_inline.backend_inline import set_matplotlib_formats

    set_matplotlib_formats("png", bbox_inches="tight" if crop else None)
