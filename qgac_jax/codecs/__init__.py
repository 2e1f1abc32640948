"""Reading the quantization lossy codecs record in their files (WebP's VP8 so far; JPEG's in `quantization`)."""
