"""Ray Tune over the learning rate and the data mix."""
