"""popdrivers: predict Spotify track popularity and estimate what causally drives it."""

from popdrivers.schema import SchemaError, validate
from popdrivers.sources.simulate import CausalTruth, SimulatedCatalog, simulate_catalog

__version__ = "0.1.0"
__all__ = ["CausalTruth", "SchemaError", "SimulatedCatalog", "simulate_catalog", "validate", "__version__"]
