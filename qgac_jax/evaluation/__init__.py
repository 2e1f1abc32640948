"""Evaluation: the protocol's cases and per-case means, and the literature's metrics (PSNR, SSIM, PSNR-B)."""
