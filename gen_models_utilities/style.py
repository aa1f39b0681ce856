"""The book's plot style, applied only when asked (importing the package changes nothing)."""
from __future__ import annotations


def use_book_style(context: str = "notebook") -> None:
    """Use the book's muted seaborn style; ``context`` is a seaborn context ('notebook', 'talk')."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    from ._checks import check_choice

    check_choice("context", context, ("paper", "notebook", "talk", "poster"))
    plt.style.use("seaborn-v0_8-muted")
    sns.set_context(context)
    plt.rcParams.update({"figure.dpi": 72, "savefig.dpi": 72, "axes.grid": True, "grid.alpha": 0.25})
