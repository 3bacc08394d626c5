"""The reward manifold model: backbone + one independent head per dimension + a scalar head."""
