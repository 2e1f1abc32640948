"""Restoring photos: the Restorer, what the network is told (guide), reading and writing files, the engines."""
