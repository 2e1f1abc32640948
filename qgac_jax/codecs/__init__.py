"""Reading the quantization lossy codecs record in their files: WebP (VP8) and HEIC (HEVC); JPEG's tables
are read by `quantization`."""
