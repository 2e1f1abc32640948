"""Reading the quantization lossy codecs record in their files: WebP (VP8), HEIC (HEVC) and AVIF (AV1), the
last two inside HEIF (`heif`); JPEG's tables are read by `quantization`."""
