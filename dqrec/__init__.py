"""dqrec: the executable companion to "Representation Quantization for Collaborative Filtering
Augmentation" (DQRec). One module per concept: data, representation, dqvae, quantizers, augment,
model, evaluate, experiment; baselines in dqrec.baselines."""

__version__ = "0.1.0"
