"""What 17b compares flow matching against: a diffusion model (``diffusion``), a CNF trained by
maximum likelihood (``cnf``), exact likelihoods under a flow (``likelihood``), and the
measurements and tables that put them side by side (``comparison``)."""
from . import cnf, comparison, diffusion, likelihood

__all__ = ["cnf", "comparison", "diffusion", "likelihood"]
