"""CNN-GP and CNTK kernels of stride-1 convolutional networks (issue 15).

- `ops`: pixel-covariance maps of convolutions (SAME / VALID / CIRCULAR) and pools;
- `layer_maps`: the ``kernel_apply`` of `gradstats.layers.conv` layer kinds;
- `driver`: the recursion over a convolutional `NetworkSpec` (per-layer NTK terms by reverse
  mode), run by `gradstats.theory.kernels` for image inputs;
- `tiled`: kernels of many images in tiles of image pairs under a memory budget, optionally
  streamed to a Zarr store;
- `diag`: the per-image diagonal recursion (per-pixel forward variances, backward signals).
"""
