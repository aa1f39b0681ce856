"""Commands that maintain the repository, run from its root: ``python -m tools.<name>``.

Not part of the package students import (``gen_models_utilities``):

    python -m tools.student_copies      # student copies of the exercise notebooks
    python -m tools.export_figures      # the PNGs in figures/
    python -m tools.retrain_checkpoints # the checkpoints the package ships
"""
