"""gen_models_utilities: the package behind the flow matching notebooks.

Importing it defines ``device`` and nothing else happens: no seeding, no plot styling.
Call ``set_seed(seed)`` and ``use_book_style()`` from a notebook's header cell.

The lesson core is flat, one module per concept (data, base_distributions, loaders, models,
paths, couplings, training, solvers, marginal_field, metrics, plotting); ``baselines`` holds
what 17b compares against and ``pretrained`` the shipped models. Importing the package
imports both, so every model class a checkpoint can name is registered.
"""
import torch

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

from ._version import __version__  # noqa: E402
from .base_distributions import (BASES, BaseDistribution, canonical_base_name, get_base,  # noqa: E402
                                 register_base, sample_base)
from .couplings import (COUPLINGS, Coupling, class_conditional_ot_coupling, independent_coupling,  # noqa: E402
                        minibatch_ot_coupling, register_coupling)
from .data import create_ring_gaussians, ring_mode_centers  # noqa: E402
from .loaders import (RandomBatches, make_conditional_loader_onehot, make_conditional_loader_radius,  # noqa: E402
                      make_loader)
from .logo import load_eth_z_logo_data  # noqa: E402
from .metrics import (Quality, off_mode_fraction, path_straightness, reference_data, ring_quality,  # noqa: E402
                      samples_per_mode, w2_floor, wasserstein2)
from .models import (MODEL_CLASSES, ConditionalVelocityField, ConditionalVelocityFieldRadius,  # noqa: E402
                     VelocityField, class_code, register_model_class)
from .paths import conditional_velocity, flow_matching_loss, interpolate  # noqa: E402
from .plotting import (plot_conditional_samples_continuous, plot_conditional_samples_discrete,  # noqa: E402
                       plot_loss, plot_pairs, plot_samples, plot_trajectories, plot_velocity_field)
from .reflow import ReflowPairs, reflow_pairs, train_on_pairs  # noqa: E402
from .seeding import set_seed  # noqa: E402
from .solvers import (SOLVERS, Solver, euler_step, generate, heun_step, midpoint_step, register_solver,  # noqa: E402
                      rk4_step, solve_ode, solver_names)
from .style import use_book_style, use_projector_style  # noqa: E402
from .training import TrainingResult, train  # noqa: E402
from . import baselines  # noqa: E402  (registers DiffusionModel with MODEL_CLASSES)
from .pretrained import (MODEL_KINDS, CheckpointError, PretrainedModels, load_checkpoint,  # noqa: E402
                         load_pretrained, save_checkpoint)
