"""dqrec: the executable companion to "Representation Quantization for Collaborative Filtering
Augmentation" (DQRec). One module per concept: data, representation, dqvae, quantizers, augment,
model, evaluate, experiment, sweep; baselines in dqrec.baselines."""

__version__ = "0.1.0"

import warnings as _warnings

# dqrec.model builds small CSR matrices per batch (valid by construction); torch warns about CSR
# support being "beta" and about skipped invariant checks, once per process. Not a user's concern.
_warnings.filterwarnings("ignore", message="Sparse (CSR tensor support|invariant checks)", category=UserWarning)
