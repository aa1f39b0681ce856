"""gen_models_utilities: the package behind the flow matching notebooks.

Importing it defines ``device`` and nothing else happens: no seeding, no plot styling.
Call ``set_seed(seed)`` and ``use_book_style()`` from a notebook's header cell.
"""
import torch

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

from .checkpoints import (CheckpointError, PretrainedModels, load_checkpoint, load_pretrained,  # noqa: E402
                          save_checkpoint)
from .base_distributions import (BASES, BaseDistribution, canonical_base_name, get_base,  # noqa: E402
                                 register_base, sample_base)
from .couplings import (class_conditional_ot_coupling, get_coupling, independent_coupling,  # noqa: E402
                        minibatch_ot_coupling)
from .data import create_ring_gaussians, ring_mode_centers  # noqa: E402
from .loaders import (RandomBatches, make_conditional_loader_onehot, make_conditional_loader_radius,  # noqa: E402
                      make_loader, one_hot)
from .logo import load_eth_z_logo_data  # noqa: E402
from .metrics import (Quality, mmd, off_mode_fraction, path_straightness, reference_data,  # noqa: E402
                      ring_quality, samples_per_mode, w2_floor, wasserstein2)
from .models import ConditionalVelocityField, ConditionalVelocityFieldRadius, VelocityField  # noqa: E402
from .paths import PathSample, conditional_velocity, flow_matching_loss, interpolate, sample_path  # noqa: E402
from .plotting import (plot_conditional_samples_continuous, plot_conditional_samples_discrete,  # noqa: E402
                       plot_loss, plot_pairs, plot_samples, plot_trajectories, plot_velocity_field)
from .reflow import ReflowPairs, reflow_pairs, train_on_pairs  # noqa: E402
from .seeding import set_seed  # noqa: E402
from .solvers import (SOLVERS, euler_step, generate, heun_step, midpoint_step, register_solver,  # noqa: E402
                      rk4_step, solve_ode, solver_names)
from .style import use_book_style, use_projector_style  # noqa: E402
from .training import TrainingResult, train  # noqa: E402

__version__ = "0.1.0"
