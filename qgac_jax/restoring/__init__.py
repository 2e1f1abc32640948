"""Restoring a photo: `Restorer`, what the network is told about the file (`guide`), the self-ensemble."""
