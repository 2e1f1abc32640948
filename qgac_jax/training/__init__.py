"""Training: configs and their typed sections, the jitted step, the loop, checkpoints, sharding, the trainers."""
