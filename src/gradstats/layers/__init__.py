"""Layer kinds, each with its torch module and its infinite-width map side by side.

One module per kind: `dense`, `activation`, `norm` (LayerNorm, BatchNorm), `residual`;
`network` composes them into the network of an `Architecture`. Adding a layer kind means
one module here plus its tests (and a sweep axis in `spec` if users choose it).
"""

from gradstats.layers.network import Block, NetworkSpec, hyper, network_spec

__all__ = ["Block", "NetworkSpec", "hyper", "network_spec"]
