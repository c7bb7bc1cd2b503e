"""fpcore: certified free-probability spectra of deep-network Jacobians at initialisation."""
from ._activations import ACTIVATIONS, Activation, D2Law, get_activation
from ._network import Network
from ._meanfield import MeanField, mean_field
from ._spectrum import SolverStats, Spectrum, jacobian_spectrum
from ._trace import LilypadTrace, lilypad_trace
from ._basins import newton_basins
from ._montecarlo import ks_distance, sample_jacobian_eigenvalues
from ._phase import PhaseDiagram, phase_diagram
from ._tune import TuneResult, criticality_measure, tune_init
from ._torch import from_torch
